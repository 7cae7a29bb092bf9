"""GET /v1/organizations/{org}/operations: an organization lists its own operations, newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from tests.api import builders as b
from tests.api.builders import refused
from tests.api.portfolio import csv_rows, every_page

T0 = datetime(2027, 3, 1, tzinfo=UTC)


@pytest.fixture
def owner(client):
    return b.person(client, "Rita")


@pytest.fixture
def org(client, owner):
    return b.organization(client, owner, name="Acme")


def topups(client, owner, org, clock, amounts: list[int]) -> list[str]:
    """One top-up operation per amount, an hour apart from T0 (ids of the operations)."""
    made = []
    for i, amount in enumerate(amounts):
        clock.pin(T0 + timedelta(hours=i))
        answer = client.post(
            f"/v1/organizations/{org}/funds", json={"amount": {"amount": amount, "currency": "EUR"}}, headers=owner.auth
        )
        assert answer.status_code == 201, answer.text
        made.append(answer.json()["operation_id"])
    clock.reset()
    return made


def test_an_organization_lists_its_operations_newest_first(client, owner, org, real_clock):
    made = topups(client, owner, org, real_clock, [100, 200, 300])

    answer = client.get(f"/v1/organizations/{org}/operations", headers=owner.auth)

    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert [op["id"] for op in page["items"]] == list(reversed(made))
    assert {(op["kind"], op["status"], op["organization_id"]) for op in page["items"]} == {("topup", "succeeded", org)}
    assert page["next_cursor"] is None


def test_operations_page_newest_first_even_when_instants_tie(client, owner, org, real_clock):
    real_clock.pin(T0)
    made = [
        client.post(
            f"/v1/organizations/{org}/funds", json={"amount": {"amount": 1, "currency": "EUR"}}, headers=owner.auth
        ).json()["operation_id"]
        for _ in range(5)
    ]
    real_clock.reset()

    seen, pages = every_page(client, owner, f"/v1/organizations/{org}/operations", "", limit=2)

    assert pages == 3
    assert [op["id"] for op in seen] == sorted(made, reverse=True)


def test_operations_filter_by_kind_status_and_since_and_count(client, owner, org, real_clock):
    made = topups(client, owner, org, real_clock, [100, 200, 300, 400])
    since = quote((T0 + timedelta(hours=2)).isoformat())

    recent = client.get(f"/v1/organizations/{org}/operations?since={since}&count=true", headers=owner.auth).json()
    failed = client.get(f"/v1/organizations/{org}/operations?status=failed", headers=owner.auth).json()
    other_kind = client.get(f"/v1/organizations/{org}/operations?kind=purchase", headers=owner.auth).json()

    assert [op["id"] for op in recent["items"]] == [made[3], made[2]] and recent["total"] == 2
    assert failed["items"] == [] and other_kind["items"] == []


def test_operations_export_as_csv(client, owner, org, real_clock):
    made = topups(client, owner, org, real_clock, [100, 200])

    rows = csv_rows(
        client.get(f"/v1/organizations/{org}/operations?limit=1", headers={**owner.auth, "Accept": "text/csv"})
    )

    assert [r["id"] for r in rows] == list(reversed(made))
    assert list(rows[0]) == ["id", "kind", "status", "error_code", "product_id", "created_at", "finished_at"]


def test_another_organizations_operations_are_not_listed(client, owner, org, real_clock):
    outsider = b.person(client, "Otto")
    theirs = b.organization(client, outsider)
    topups(client, outsider, theirs, real_clock, [100])
    topups(client, owner, org, real_clock, [100])

    mine = client.get(f"/v1/organizations/{org}/operations", headers=owner.auth).json()["items"]

    assert {op["organization_id"] for op in mine} == {org}
    refused(client.get(f"/v1/organizations/{theirs}/operations", headers=owner.auth), 404, "not_found")


def test_a_member_cannot_ask_for_a_kind_they_may_not_read(client, owner, org):
    viewer = b.member(client, owner, org, ["org:view"])

    message = refused(
        client.get(f"/v1/organizations/{org}/operations?kind=release", headers=viewer.auth), 403, "permission_denied"
    )

    assert "client:manage" in message
    assert client.get(f"/v1/organizations/{org}/operations?kind=topup", headers=viewer.auth).status_code == 200


@pytest.mark.parametrize(
    "query, code",
    [
        ("?since=yesterday", "invalid_request"),
        ("?since=2027-01-01T00:00:00", "invalid_request"),
        ("?status=done", "invalid_request"),
        ("?kind=DROP%20TABLE", "invalid_request"),
        ("?limit=0", "invalid_request"),
        ("?after=xyz", "invalid_cursor"),
        ("?before=op_1", "unknown_parameter"),
    ],
)
def test_bad_operation_queries_are_refused(client, owner, org, query, code):
    refused(client.get(f"/v1/organizations/{org}/operations{query}", headers=owner.auth), 400, code)


LIST_ROUTES = [
    "/v1/organizations/{org}/products",
    "/v1/organizations/{org}/operations",
    "/v1/resellers/{org}/clients",
    "/v1/organizations/{org}/webhook-endpoints",
    "/v1/organizations/{org}/teams",
    "/v1/me",
]


@pytest.mark.parametrize("path", LIST_ROUTES)
def test_every_list_route_names_a_query_parameter_it_does_not_take(client, owner, path):
    reseller = b.organization(client, owner, reseller=True)

    answer = client.get(path.format(org=reseller) + "?sortt=name", headers=owner.auth)

    assert "sortt" in refused(answer, 400, "unknown_parameter")


def test_the_ops_list_also_refuses_unknown_parameters(client):
    answer = client.get("/v1/ops/operations?statuss=failed", headers={"Authorization": "Bearer ops-secret"})

    assert "statuss" in refused(answer, 400, "unknown_parameter")
