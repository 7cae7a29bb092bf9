"""Sandbox organizations and their test clocks, as an API client sees them (no workers here:
an advance stays accepted, so the clock shows it under way)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from runtime.clock import clock
from tests.api import builders

T0 = datetime(2027, 5, 4, 8, 30, tzinfo=UTC)


def sandbox(client, owner, *, reseller: bool = False) -> str:
    answer = client.post(
        "/v1/organizations", json={"name": "Rehearsal", "reseller": reseller, "sandbox": True}, headers=owner.auth
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["sandbox"] is True
    return answer.json()["id"]


def advance(client, owner, org, to: datetime, key: str | None = None):
    headers = {**owner.auth, **({"Idempotency-Key": key} if key else {})}
    return client.post(f"/v1/organizations/{org}/test-clock", json={"advance_to": to.isoformat()}, headers=headers)


def test_a_sandbox_organization_says_so_and_its_clock_starts_at_its_creation(client):
    clock.pin(T0)
    owner = builders.person(client)
    org = sandbox(client, owner, reseller=True)
    production = builders.organization(client, owner)

    assert client.get(f"/v1/organizations/{org}", headers=owner.auth).json()["sandbox"] is True
    assert client.get(f"/v1/organizations/{production}", headers=owner.auth).json()["sandbox"] is False
    shown = client.get(f"/v1/organizations/{org}/test-clock", headers=owner.auth)
    assert shown.status_code == 200, shown.text
    assert shown.json()["now"] == "2027-05-04T08:30:00Z"
    assert shown.json()["advancing"] is False


def test_a_production_organization_has_no_test_clock(client):
    owner = builders.person(client)
    production = builders.organization(client, owner)

    read = client.get(f"/v1/organizations/{production}/test-clock", headers=owner.auth)
    moved = advance(client, owner, production, clock.now() + timedelta(days=30))

    assert (read.status_code, read.json()["error"]["code"]) == (409, "not_a_sandbox")
    assert (moved.status_code, moved.json()["error"]["code"]) == (409, "not_a_sandbox")


def test_an_advance_is_an_operation_and_a_second_one_waits_for_it(client):
    clock.pin(T0)
    owner = builders.person(client)
    org = sandbox(client, owner)

    first = advance(client, owner, org, T0 + timedelta(days=400), key="rehearse-1")
    replay = advance(client, owner, org, T0 + timedelta(days=400), key="rehearse-1")
    second = advance(client, owner, org, T0 + timedelta(days=500))
    shown = client.get(f"/v1/organizations/{org}/test-clock", headers=owner.auth).json()

    assert first.status_code == 202, first.text
    assert first.json()["kind"] == "test_clock"
    assert (replay.status_code, replay.json()["id"]) == (202, first.json()["id"])
    assert (second.status_code, second.json()["error"]["code"]) == (409, "test_clock_advancing")
    assert shown["advancing"] is True
    assert shown["operation_id"] == first.json()["id"]
    assert shown["advancing_to"] == "2028-06-07T08:30:00Z"


def test_a_clock_never_goes_back_nor_stands_still(client):
    clock.pin(T0)
    owner = builders.person(client)
    org = sandbox(client, owner)

    same = advance(client, owner, org, T0)
    back = advance(client, owner, org, T0 - timedelta(days=1))
    naive = client.post(
        f"/v1/organizations/{org}/test-clock", json={"advance_to": "2027-06-01T00:00:00"}, headers=owner.auth
    )

    assert (same.status_code, same.json()["error"]["code"]) == (409, "advance_not_ahead")
    assert "2027-05-04T08:30:00Z" in same.json()["error"]["message"]
    assert (back.status_code, back.json()["error"]["code"]) == (409, "advance_not_ahead")
    assert naive.status_code == 400, naive.text
    assert client.get(f"/v1/organizations/{org}/test-clock", headers=owner.auth).json()["advancing"] is False


def test_an_advance_is_bounded_to_five_years(client):
    clock.pin(T0)
    owner = builders.person(client)
    org = sandbox(client, owner)

    answer = advance(client, owner, org, T0 + timedelta(days=6 * 366))

    assert (answer.status_code, answer.json()["error"]["code"]) == (422, "advance_too_far")


def test_only_managers_move_the_clock_and_strangers_see_nothing(client):
    owner = builders.person(client)
    org = sandbox(client, owner)
    viewer = builders.member(client, owner, org, ["org:view"])
    stranger = builders.person(client, "Eve")

    assert client.get(f"/v1/organizations/{org}/test-clock", headers=viewer.auth).status_code == 200
    assert advance(client, viewer, org, clock.now() + timedelta(days=2)).status_code == 403
    assert client.get(f"/v1/organizations/{org}/test-clock", headers=stranger.auth).status_code == 404
    assert advance(client, stranger, org, clock.now() + timedelta(days=2)).status_code == 404


def test_a_dry_run_advance_checks_and_moves_nothing(client):
    clock.pin(T0)
    owner = builders.person(client)
    org = sandbox(client, owner)
    dry = {**owner.auth, "Dry-Run": "1"}

    fine = client.post(f"/v1/organizations/{org}/test-clock", json={"advance_to": "2028-01-01T00:00:00Z"}, headers=dry)
    back = client.post(f"/v1/organizations/{org}/test-clock", json={"advance_to": "2027-01-01T00:00:00Z"}, headers=dry)

    assert (fine.status_code, fine.json()["would_fail"]) == (200, None), fine.text
    assert (back.status_code, back.json()["would_fail"]["code"]) == (200, "advance_not_ahead")
    shown = client.get(f"/v1/organizations/{org}/test-clock", headers=owner.auth).json()
    assert (shown["now"], shown["advancing"]) == ("2027-05-04T08:30:00Z", False)
    listed = client.get(f"/v1/organizations/{org}/operations", headers=owner.auth)
    assert listed.status_code == 200 and listed.json()["items"] == [], listed.text
