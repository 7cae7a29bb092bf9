"""Operations in the activity record (accepted in web, finished by workers) and the events feed."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import msgspec
from litestar.testing import TestClient

from runtime.clock import clock
from runtime.ids import new_id
from tables import events
from tables.events import Event
from tests.api import builders
from tests.integration.flows import buy, db, wait_all, wait_done
from tests.integration.test_inbound import post, reseller, rotate, upsert
from tests.integration.test_lifecycle import T0, bought, tick_days
from tests.integration.test_webhooks_out import settle, subscribe
from web.app import create_app


def activity(api, who, org, **params) -> list[dict]:
    answer = api.get(f"/v1/organizations/{org}/activity", params=params, headers=who.auth)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def of_operation(rows: list[dict], op_id: str) -> list[tuple[str, str, str | None]]:
    return [(r["kind"], r["actor"]["id"], r["actor"]["key_id"]) for r in rows if r["operation_id"] == op_id]


def test_an_operation_is_recorded_when_accepted_and_when_it_ends_with_who_asked_and_which_key(api, workers):
    workers()
    owner, org = builders.funded(api, 1500)
    named = api.post("/v1/me/keys", json={"name": "back office"}, headers=owner.auth).json()
    default_key = next(k["id"] for k in api.get("/v1/me/keys", headers=owner.auth).json() if k["name"] == "default")
    by_named = builders.Person(owner.id, owner.email, named["api_key"])
    paid = wait_done(api, owner, buy(api, by_named, org, "paid.fr").json()["id"])
    unpaid = wait_done(api, owner, buy(api, owner, org, "unpaid.fr").json()["id"])

    rows = activity(api, owner, org)
    product_rows = activity(api, owner, org, product=paid["result"]["product_id"])

    assert (paid["status"], unpaid["status"]) == ("succeeded", "failed")
    assert of_operation(rows, paid["id"]) == [
        ("operation.succeeded", owner.id, named["id"]),
        ("operation.accepted", owner.id, named["id"]),
    ]
    assert of_operation(rows, unpaid["id"]) == [
        ("operation.failed", owner.id, default_key),
        ("operation.accepted", owner.id, default_key),
    ]
    assert [(r["kind"], r["details"]) for r in product_rows] == [("operation.succeeded", {"kind": "purchase"})]
    assert [r["kind"] for r in activity(api, owner, org, kind="operation.failed")] == ["operation.failed"]


def test_an_autorenewal_is_recorded_as_tenure_itself(api, workers, broker, sender):
    workers()
    clock.pin(T0)
    owner, org = builders.funded(api, 100_000)
    product_id = bought(api, owner, org, "renewed.fr")
    expires = api.get(f"/v1/products/{product_id}", headers=owner.auth).json()["expires_at"]

    clock.pin(datetime.fromisoformat(expires.replace("Z", "+00:00")) - timedelta(days=31, hours=1))
    tick_days(broker, sender, 1)
    by_tenure = activity(api, owner, org, actor="system")

    assert [(r["kind"], r["product_id"], r["details"]["kind"]) for r in by_tenure] == [
        ("operation.succeeded", product_id, "renewal"),
        ("operation.accepted", product_id, "renewal"),
    ]
    assert {r["actor"]["type"] for r in by_tenure} == {"system"}


def test_a_bulk_renewals_items_keep_the_account_that_asked(api, workers):
    workers()
    owner, org = builders.funded(api, 100_000)
    products = [
        api.get(f"/v1/products/{bought(api, owner, org, f'bulk{n}.fr')}", headers=owner.auth).json() for n in range(3)
    ]
    answer = api.post(
        f"/v1/organizations/{org}/renewals",
        headers=owner.auth,
        json={"items": [{"product_id": p["id"], "years": 1, "current_expires_at": p["expires_at"]} for p in products]},
    )
    batch = wait_done(api, owner, answer.json()["id"])

    rows = activity(api, owner, org, kind="operation.succeeded")
    items = [r for r in rows if r["product_id"] and r["details"]["kind"] == "renewal"]

    assert batch["status"] == "succeeded", batch
    assert sorted(r["product_id"] for r in items) == sorted(p["id"] for p in products)
    assert {r["actor"]["id"] for r in rows} == {owner.id}
    accepted = activity(api, owner, org, kind="operation.accepted")
    assert sum(1 for r in accepted if r["details"].get("parent_id") == batch["id"]) == 3


def test_a_reseller_webhook_is_the_actor_of_what_it_asks(api, workers):
    workers()
    owner, org = reseller(api)
    secret = rotate(api, owner, org)["secret"]
    answer = post(api, org, secret, upsert("CRM-7"), msg_id="msg_crm_7")
    op = wait_done(api, owner, answer.json()["operation"]["id"])

    from_webhook = activity(api, owner, org, actor="webhook:msg_crm_7")
    any_webhook = activity(api, owner, org, actor="webhook")
    rotated = activity(api, owner, org, kind="inbound_secret.rotated")

    assert op["status"] == "succeeded", op
    assert [(r["kind"], r["actor"]) for r in from_webhook] == [
        ("operation.succeeded", {"type": "webhook", "id": "msg_crm_7", "key_id": None}),
        ("operation.accepted", {"type": "webhook", "id": "msg_crm_7", "key_id": None}),
    ]
    assert any_webhook == from_webhook
    assert [r["actor"]["id"] for r in rotated] == [owner.id] and secret not in str(rotated)


def test_a_back_office_whose_endpoint_was_down_catches_up_from_the_last_event_it_processed(
    api, workers, broker, sender, receiver
):
    workers()
    owner, org = builders.funded(api, 100_000)
    subscribe(api, owner, org, receiver, "/crm")
    wait_done(api, owner, buy(api, owner, org, "before.fr").json()["id"])
    settle(broker, sender)
    last_processed = max(r.webhook_id for r in receiver.delivered("/crm"))
    receiver.behaviour = lambda path, webhook_id, attempt: (503, {})  # the endpoint goes down

    wait_all(api, owner, [buy(api, owner, org, f"missed{n}.fr").json()["id"] for n in range(25)])
    settle(broker, sender)
    missed = {r.webhook_id: r for r in receiver.received if r.answered == 503}
    feed, after = [], last_processed
    deadline = time.monotonic() + 20  # the newest events wait out the feed's settle time (2 s)
    while True:
        page = api.get(
            f"/v1/organizations/{org}/events", params={"after": after, "limit": 20}, headers=owner.auth
        ).json()
        feed += page["items"]
        after = page["next_after"]
        if not page["has_more"]:
            if len(feed) >= len(missed) or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # a back office polls again from its last id

    assert len(missed) == 50  # an operation.succeeded and a product.purchased per purchase
    assert [e["id"] for e in feed] == sorted(missed)  # each once, in the order they were made
    assert all((e["type"], e["data"]) == (missed[e["id"]].type, missed[e["id"]].data) for e in feed)
    assert after == feed[-1]["id"]
    again = api.get(f"/v1/organizations/{org}/events", params={"after": after}, headers=owner.auth).json()
    assert again == {"items": [], "next_after": after, "has_more": False}


def test_a_release_its_reissued_claim_and_the_claim_are_recorded_without_their_tokens(api, workers):
    from tests.integration.test_releases import claim, released, reseller_with_client

    workers()
    owner, reseller_id, client_id, client_email = reseller_with_client(api)
    first = released(api, owner, reseller_id, client_id, client_email)
    reissued = api.post(f"/v1/resellers/{reseller_id}/clients/{client_id}/claim", headers=owner.auth).json()
    made = claim(api, reissued["claim_token"])
    assert made.status_code == 201, made.text
    new_owner = builders.Person(made.json()["account_id"], client_email, made.json()["api_key"])
    new_org = made.json()["organization_id"]

    for_client = activity(api, owner, reseller_id, client=client_id)
    in_new_org = activity(api, new_owner, new_org)

    assert [r["kind"] for r in for_client] == [
        "claim.accepted",
        "claim.reissued",
        "operation.succeeded",
        "operation.accepted",
        "client.created",
    ]
    assert for_client[0]["actor"]["id"] == new_owner.id
    assert for_client[1]["details"] == {"released_to": new_org}
    assert [(r["kind"], r["actor"]["id"]) for r in in_new_org] == [("claim.accepted", new_owner.id)]
    for token in (first["result"]["claim_token"], reissued["claim_token"]):
        assert token not in str(for_client) and token not in str(in_new_org)


def test_the_events_feed_waits_for_an_event_that_commits_after_a_newer_one(settings, sender):
    """Ids are made before commit: a slow transaction's event commits behind a newer one. The
    feed holds back what is younger than its settle time, so a client reading then never moves
    its `after` past the late event (without it, the first read lists the newer event alone)."""
    with TestClient(create_app(msgspec.structs.replace(settings, event_feed_settle_seconds=3), sender=sender)) as api:
        owner = builders.person(api)
        org = builders.organization(api, owner)
        late = new_id("evt")  # made first, by a transaction that commits last
        data = {"from": "A", "to": "B", "discount_percent": 10, "volume_12m": {"amount": 0, "currency": "EUR"}}
        db(events.record("tier.changed", org, clock.now(), data=data))

        def read(after=None) -> dict:
            params = {"after": after} if after else {}
            return api.get(f"/v1/organizations/{org}/events", params=params, headers=owner.auth).json()

        first = read()
        db(
            Event.insert(
                Event(id=late, type="tier.changed", organization_id=org, data=data, created_at=clock.now())
            ).run()
        )
        deadline, listed, after = time.monotonic() + 15, [], first["next_after"]
        while len(listed) < 2 and time.monotonic() < deadline:
            page = read(after)
            listed += [item["id"] for item in page["items"]]
            after = page["next_after"]
            time.sleep(0.2)

    assert first["items"] == []  # both younger than the settle time
    assert listed[0] == late and len(listed) == 2  # the late one first, nothing skipped
