"""The activity record through the API: who changed what, filters, pages, CSV, tenancy."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import TestClient
from msgspec.structs import replace

from runtime.clock import clock
from tests.api import builders
from web.app import create_app


def activity(api, who, org, **params) -> list[dict]:
    answer = api.get(f"/v1/organizations/{org}/activity", params=params, headers=who.auth)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def test_synchronous_changes_are_listed_newest_first_with_the_account_and_key_that_made_them(settings):
    with TestClient(create_app(replace(settings, allow_private_webhook_urls=True))) as client:
        owner = builders.person(client)
        org = builders.organization(client, owner)
        team = builders.team(client, owner, org, ["product:view"])
        newcomer = builders.person(client, "Bob")
        client.post(f"/v1/organizations/{org}/teams/{team}/members", json={"email": newcomer.email}, headers=owner.auth)
        builders.fund(client, owner, org, 5_000)
        endpoint = client.post(
            f"/v1/organizations/{org}/webhook-endpoints",
            headers=owner.auth,
            json={"url": "http://127.0.0.1:9/hook", "event_types": []},
        ).json()
        rotated = client.post(
            f"/v1/organizations/{org}/webhook-endpoints/{endpoint['id']}/secret", headers=owner.auth
        ).json()
        removed = client.delete(f"/v1/organizations/{org}/teams/{team}/members/{newcomer.id}", headers=owner.auth)
        listed = client.get(f"/v1/organizations/{org}/activity", headers=owner.auth)

    assert removed.status_code == 204
    assert listed.status_code == 200
    rows = listed.json()["items"]
    assert [r["kind"] for r in rows] == [
        "member.removed",
        "webhook_endpoint.secret_rotated",
        "webhook_endpoint.created",
        "funds.added",
        "member.added",
        "team.created",
        "organization.created",
    ]
    key_id = rows[0]["actor"]["key_id"]
    assert key_id.startswith("key_")
    assert {(r["actor"]["type"], r["actor"]["id"], r["actor"]["key_id"]) for r in rows} == {
        ("account", owner.id, key_id)
    }
    assert rows[0]["details"] == {"team_id": team, "account_id": newcomer.id}
    assert rows[1]["details"] == {"endpoint_id": endpoint["id"]}
    assert rows[3]["details"]["amount"] == {"amount": 5_000, "currency": "EUR"}
    assert rows[3]["operation_id"]
    for secret in (endpoint["secret"], rotated["secret"]):
        assert secret not in listed.text


def test_the_key_used_is_the_one_recorded(client):
    owner = builders.person(client)
    org = builders.organization(client, owner)
    named = client.post("/v1/me/keys", json={"name": "back office", "organizations": [org]}, headers=owner.auth).json()
    revoked = client.post("/v1/me/keys", json={"name": "short-lived"}, headers=owner.auth).json()
    client.delete(f"/v1/me/keys/{revoked['id']}", headers=owner.auth)
    with_named = {"Authorization": f"Bearer {named['api_key']}"}

    client.post(f"/v1/organizations/{org}/teams", json={"name": "ops", "permissions": ["org:view"]}, headers=with_named)
    rows = activity(client, owner, org)

    assert [(r["kind"], r["actor"]["key_id"]) for r in rows[:4]] == [
        ("team.created", named["id"]),
        ("api_key.revoked", default_key_id_of(client, owner)),
        ("api_key.created", default_key_id_of(client, owner)),
        ("api_key.created", default_key_id_of(client, owner)),
    ]
    assert [r["details"]["api_key_id"] for r in rows[1:4]] == [revoked["id"], revoked["id"], named["id"]]
    assert named["api_key"] not in str(rows) and revoked["api_key"] not in str(rows)


def default_key_id_of(client, who) -> str:
    return next(k["id"] for k in client.get("/v1/me/keys", headers=who.auth).json() if k["name"] == "default")


def test_a_reseller_sees_its_clients_products_activity_and_filters_by_client(client):
    owner = builders.person(client)
    reseller = builders.organization(client, owner, reseller=True)
    builders.fund(client, owner, reseller, 10_000)
    dupont = builders.client_of(client, owner, reseller, "Dupont")
    martin = builders.client_of(client, owner, reseller, "Martin")
    bought = client.post(
        f"/v1/organizations/{reseller}/purchases",
        headers=owner.auth,
        json={"kind": "domain", "name": "dupont.fr", "years": 1, "payment_method": "prepaid", "client": dupont},
    )
    assert bought.status_code == 202, bought.text

    for_dupont = activity(client, owner, reseller, client=dupont)
    accepted = activity(client, owner, reseller, kind="operation.accepted")

    assert [r["kind"] for r in for_dupont] == ["operation.accepted", "client.created"]
    assert for_dupont[0]["operation_id"] == bought.json()["id"]
    assert for_dupont[0]["details"] == {"kind": "purchase"}
    assert [r["client_id"] for r in accepted] == [dupont]
    assert [r["kind"] for r in activity(client, owner, reseller, client=martin)] == ["client.created"]


def test_filters_by_actor_kind_and_period(client):
    owner = builders.person(client)
    org = builders.organization(client, owner)
    clock.pin(datetime(2027, 1, 10, 12, 0, tzinfo=UTC))
    admin = builders.member(client, owner, org, ["org:manage", "org:view"], "Ann")
    clock.advance(timedelta(days=1))
    client.post(
        f"/v1/organizations/{org}/teams", json={"name": "later", "permissions": ["org:view"]}, headers=admin.auth
    )

    by_admin = activity(client, owner, org, actor=admin.id)
    teams = activity(client, owner, org, kind="team.created")
    day_two = activity(client, owner, org, since="2027-01-11T00:00:00Z")
    day_one = activity(client, owner, org, since="2027-01-10T00:00:00Z", until="2027-01-11T00:00:00Z")

    assert [(r["kind"], r["details"].get("permissions")) for r in by_admin] == [("team.created", ["org:view"])]
    assert [r["actor"]["id"] for r in teams] == [admin.id, owner.id]
    assert [r["kind"] for r in day_two] == ["team.created"]
    assert [r["kind"] for r in day_one] == ["member.added", "team.created"]
    counted = client.get(
        f"/v1/organizations/{org}/activity", params={"kind": "team.created", "count": "true"}, headers=owner.auth
    ).json()
    assert counted["total"] == 2
    assert activity(client, owner, org, actor="system") == []


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"actor": "bob"}, "invalid_actor"),
        ({"kind": "created"}, "invalid_kind"),
        ({"product": "not an id"}, "invalid_product"),
        ({"client": "x"}, "invalid_client"),
        ({"since": "2027-01-02T00:00:00Z", "until": "2027-01-01T00:00:00Z"}, "invalid_period"),
        ({"since": "2027-01-02T00:00:00"}, "invalid_request"),
        ({"after": "garbage"}, "invalid_cursor"),
        ({"who": "me"}, "unknown_parameter"),
    ],
)
def test_a_filter_that_cannot_match_is_refused_saying_what_to_send(client, params, code):
    owner = builders.person(client)
    org = builders.organization(client, owner)

    answer = client.get(f"/v1/organizations/{org}/activity", params=params, headers=owner.auth)

    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == code
    assert answer.json()["error"]["message"]


def test_pages_follow_the_cursor_newest_first_and_csv_has_everything(client):
    owner = builders.person(client)
    org = builders.organization(client, owner)
    for n in range(5):
        builders.team(client, owner, org, ["org:view"], name=f"team {n}")
    everything = activity(client, owner, org)

    seen, after = [], None
    while True:
        params = {"limit": 2, **({"after": after} if after else {})}
        page = client.get(f"/v1/organizations/{org}/activity", params=params, headers=owner.auth).json()
        seen += page["items"]
        after = page["next_cursor"]
        if after is None:
            break
    exported = client.get(f"/v1/organizations/{org}/activity", headers={**owner.auth, "Accept": "text/csv"})

    assert len(everything) == 6 and seen == everything
    assert [r["kind"] for r in everything] == ["team.created"] * 5 + ["organization.created"]
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["id"] for r in rows] == [r["id"] for r in everything]
    assert rows[0]["actor_id"] == owner.id and '"team_id"' in rows[0]["details"]


def test_activity_needs_org_view_and_stays_in_its_organization(client):
    owner = builders.person(client)
    org = builders.organization(client, owner)
    buyer = builders.member(client, owner, org, ["product:buy"])
    stranger = builders.person(client, "Eve")
    elsewhere = builders.organization(client, stranger)

    assert client.get(f"/v1/organizations/{org}/activity", headers=buyer.auth).status_code == 403
    assert client.get(f"/v1/organizations/{org}/activity", headers=stranger.auth).status_code == 404
    assert [r["kind"] for r in activity(client, stranger, elsewhere)] == ["organization.created"]


def test_the_event_feed_needs_webhook_manage_and_a_real_event_id(client):
    owner = builders.person(client)
    org = builders.organization(client, owner)
    viewer = builders.member(client, owner, org, ["org:view"])

    refused = client.get(f"/v1/organizations/{org}/events", headers=viewer.auth)
    bad = client.get(f"/v1/organizations/{org}/events", params={"after": "42"}, headers=owner.auth)
    empty = client.get(f"/v1/organizations/{org}/events", headers=owner.auth)

    assert refused.status_code == 403
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_after"
    assert empty.json() == {"items": [], "next_after": None, "has_more": False}
