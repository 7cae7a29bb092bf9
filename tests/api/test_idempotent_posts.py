"""Idempotency-Key on every synchronous POST: the first answer replayed, one effect, per caller."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from litestar.testing import TestClient

from runtime.clock import clock
from tables import deliveries, events
from tables.accounts import Account
from tables.engine import transaction
from tables.events import Event
from tables.idempotency import IdempotentResponse
from tables.inbound import InboundSecret
from tests.api import builders
from tests.api.builders import Person
from web.app import create_app
from worker import retention

T0 = datetime(2027, 5, 3, 9, 0, tzinfo=UTC)
HOOK = "http://127.0.0.1:9/hook"


def db(coro):
    return asyncio.run(coro)


@pytest.fixture
def settings(settings):
    """Endpoints on this machine's addresses are allowed: the receivers here are local."""
    return msgspec.structs.replace(settings, allow_private_webhook_urls=True)


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def post(client, path: str, who: Person | None = None, body: dict | None = None, key: str | None = None):
    headers = {**(who.auth if who else {}), **({"Idempotency-Key": key} if key is not None else {})}
    if body is None:
        return client.post(path, headers=headers)
    return client.post(path, json=body, headers=headers)


def stored_rows() -> list[dict]:
    return db(IdempotentResponse.raw("SELECT * FROM idempotent_responses").run())


# --- one case per POST route: its path, caller, body, and how many times it took effect -----------


@dataclass
class Case:
    path: str
    who: Person | None
    body: dict | None
    effects: Callable[[], int]
    other_body: dict | None = None  # another request on the same route (None: the route takes no body)


def organization_case(client) -> Case:
    owner = builders.person(client)
    return Case(
        "/v1/organizations",
        owner,
        {"name": "Acme", "reseller": False},
        lambda: len(client.get("/v1/me", headers=owner.auth).json()["organizations"]),
        {"name": "Acme", "reseller": True},
    )


def team_case(client) -> Case:
    owner = builders.person(client)
    org = builders.organization(client, owner)
    teams = lambda: len(client.get(f"/v1/organizations/{org}/teams", headers=owner.auth).json()) - 1  # noqa: E731
    return Case(
        f"/v1/organizations/{org}/teams",
        owner,
        {"name": "Ops", "permissions": ["org:view"]},
        teams,
        {"name": "Ops", "permissions": ["org:view", "billing:view"]},
    )


def member_case(client) -> Case:
    owner = builders.person(client)
    org = builders.organization(client, owner)
    team = builders.team(client, owner, org, ["org:view"])
    newcomer, other = builders.person(client, "Bob"), builders.person(client, "Eve")

    def members() -> int:
        teams = client.get(f"/v1/organizations/{org}/teams", headers=owner.auth).json()
        return len(next(t for t in teams if t["id"] == team)["members"])

    return Case(
        f"/v1/organizations/{org}/teams/{team}/members",
        owner,
        {"email": newcomer.email},
        members,
        {"email": other.email},
    )


def client_case(client) -> Case:
    owner = builders.person(client)
    reseller = builders.organization(client, owner, reseller=True)
    path = f"/v1/resellers/{reseller}/clients"
    return Case(
        path,
        owner,
        {"name": "Martin", "email": "martin@client.test"},
        lambda: len(client.get(path, headers=owner.auth).json()["items"]),
        {"name": "Martine", "email": "martin@client.test"},
    )


def endpoint_case(client) -> Case:
    owner = builders.person(client)
    org = builders.organization(client, owner)
    path = f"/v1/organizations/{org}/webhook-endpoints"
    return Case(
        path,
        owner,
        {"url": HOOK, "event_types": []},
        lambda: len(client.get(path, headers=owner.auth).json()),
        {"url": HOOK, "event_types": ["tier.changed"]},
    )


def inbound_secret_case(client) -> Case:
    owner = builders.person(client)
    reseller = builders.organization(client, owner, reseller=True)
    return Case(
        f"/v1/resellers/{reseller}/inbound-secret",
        owner,
        None,
        lambda: db(InboundSecret.count().where(InboundSecret.organization_id == reseller).run()),
    )


def sign_up_case(client) -> Case:
    email = "ada.lovelace@example.test"
    return Case(
        "/v1/accounts",
        None,
        {"email": email, "name": "Ada"},
        lambda: db(Account.count().where(Account.email == email).run()),
        {"email": email, "name": "Ada Lovelace"},
    )


CASES = {
    "organizations": organization_case,
    "teams": team_case,
    "members": member_case,
    "clients": client_case,
    "webhook endpoints": endpoint_case,
    "inbound secret rotation": inbound_secret_case,
    "sign-up": sign_up_case,
}
WITH_BODIES = [name for name in CASES if name != "inbound secret rotation"]


@pytest.mark.parametrize("route", list(CASES))
def test_the_same_key_and_body_twice_take_effect_once_and_answer_the_first_answer(client, route):
    case = CASES[route](client)

    first = post(client, case.path, case.who, case.body, key="one-key")
    second = post(client, case.path, case.who, case.body, key="one-key")

    assert first.status_code == 201, first.text
    assert (second.status_code, second.json()) == (first.status_code, first.json())
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert case.effects() == 1


@pytest.mark.parametrize("route", WITH_BODIES)
def test_another_body_with_the_same_key_is_refused(client, route):
    case = CASES[route](client)
    assert post(client, case.path, case.who, case.body, key="one-key").status_code == 201

    again = post(client, case.path, case.who, case.other_body, key="one-key")

    builders.refused(again, 422, "idempotency_key_reused")
    assert case.effects() == 1


def test_without_a_key_each_request_takes_effect(client):
    case = endpoint_case(client)

    answers = [post(client, case.path, case.who, case.body) for _ in range(2)]

    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json()["id"] != answers[1].json()["id"]
    assert case.effects() == 2


def test_another_caller_with_the_same_key_gets_its_own_effect_and_not_the_first_secret(client):
    owner = builders.person(client)
    org = builders.organization(client, owner)
    colleague = builders.member(client, owner, org, ["webhook:manage"])
    path = f"/v1/organizations/{org}/webhook-endpoints"

    mine = post(client, path, owner, {"url": HOOK, "event_types": []}, key="shared-key")
    theirs = post(client, path, colleague, {"url": HOOK, "event_types": []}, key="shared-key")

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]
    assert theirs.json()["secret"] != mine.json()["secret"]
    assert len(client.get(path, headers=owner.auth).json()) == 2


def test_a_key_is_scoped_to_the_route_it_was_sent_to(client):
    owner = builders.person(client)
    org = builders.organization(client, owner)

    team = post(client, f"/v1/organizations/{org}/teams", owner, {"name": "Ops", "permissions": []}, key="k")
    other_org = post(client, "/v1/organizations", owner, {"name": "Beta"}, key="k")

    assert (team.status_code, other_org.status_code) == (201, 201)
    assert "idempotent-replayed" not in other_org.headers


def test_concurrent_requests_with_one_key_take_effect_once(client):
    case = endpoint_case(client)
    start = threading.Barrier(6)

    def one(_):
        start.wait()
        return post(client, case.path, case.who, case.body, key="racing-key")

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(one, range(6)))

    assert case.effects() == 1
    made = [a for a in answers if a.status_code == 201]
    busy = [a for a in answers if a.status_code != 201]
    assert made and len({a.json()["id"] for a in made}) == 1
    for answer in busy:
        builders.refused(answer, 409, "idempotency_key_in_use")
        assert answer.headers["retry-after"] == "1"
    assert post(client, case.path, case.who, case.body, key="racing-key").json() == made[0].json()


def test_a_key_used_on_a_top_up_and_on_a_team_is_two_keys_and_top_ups_replay_as_before(client):
    owner = builders.person(client)
    org = builders.organization(client, owner)
    funds = f"/v1/organizations/{org}/funds"
    top_up = {"amount": {"amount": 1000, "currency": "EUR"}}

    first_top_up = post(client, funds, owner, top_up, key="same-key")
    team = post(client, f"/v1/organizations/{org}/teams", owner, {"name": "Ops", "permissions": []}, key="same-key")
    again_top_up = post(client, funds, owner, top_up, key="same-key")
    again_team = post(
        client, f"/v1/organizations/{org}/teams", owner, {"name": "Ops", "permissions": []}, key="same-key"
    )

    assert (first_top_up.status_code, team.status_code) == (201, 201)
    assert again_top_up.json()["operation_id"] == first_top_up.json()["operation_id"]
    assert again_top_up.json()["balance"]["amount"] == 1000
    assert again_team.json() == team.json()
    assert [row["path"] for row in stored_rows()] == [f"/v1/organizations/{org}/teams"]


def test_no_secret_shown_once_is_stored_in_clear_and_a_replay_shows_it_again(client):
    signed_up = post(client, "/v1/accounts", None, {"email": "grace@example.test", "name": "Grace"}, key="k1")
    owner = Person(id=signed_up.json()["id"], email="grace@example.test", key=signed_up.json()["api_key"])
    reseller = builders.organization(client, owner, reseller=True)
    endpoint = post(
        client, f"/v1/organizations/{reseller}/webhook-endpoints", owner, {"url": HOOK, "event_types": []}, key="k2"
    )
    inbound = post(client, f"/v1/resellers/{reseller}/inbound-secret", owner, key="k3")
    shown = [signed_up.json()["api_key"], endpoint.json()["secret"], inbound.json()["secret"]]

    rows = stored_rows()

    assert len(rows) == 3
    dumped = repr(rows)
    assert [secret for secret in shown if secret in dumped or secret.split("_", 1)[-1] in dumped] == []
    replayed = [
        post(client, "/v1/accounts", None, {"email": "grace@example.test", "name": "Grace"}, key="k1"),
        post(
            client, f"/v1/organizations/{reseller}/webhook-endpoints", owner, {"url": HOOK, "event_types": []}, key="k2"
        ),
        post(client, f"/v1/resellers/{reseller}/inbound-secret", owner, key="k3"),
    ]
    assert [r.json().get("api_key") or r.json().get("secret") for r in replayed] == shown


def test_a_refused_request_is_answered_the_same_refusal_when_replayed(client):
    case = member_case(client)
    stranger = {"email": "nobody-yet@example.test"}
    first = post(client, case.path, case.who, stranger, key="k")
    builders.refused(first, 422, "unknown_account")
    client.post("/v1/accounts", json={"email": "nobody-yet@example.test", "name": "Newt"})

    again = post(client, case.path, case.who, stranger, key="k")

    assert (again.status_code, again.json()) == (422, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    assert case.effects() == 0


def test_a_malformed_request_does_not_use_up_its_key(client):
    case = team_case(client)
    builders.refused(post(client, case.path, case.who, {"name": 5, "permissions": []}, key="k"), 400, "invalid_request")

    fixed = post(client, case.path, case.who, case.body, key="k")

    assert fixed.status_code == 201, fixed.text
    assert case.effects() == 1


def test_a_server_error_lets_the_same_key_be_sent_again(client):
    case = endpoint_case(client)
    client.app.state.settings = msgspec.structs.replace(client.app.state.settings, allow_private_webhook_urls=False)

    async def broken(host: str) -> list[str]:
        raise RuntimeError("resolver crashed")

    async def public(host: str) -> list[str]:
        return ["93.184.215.14"]

    client.app.state.resolver = broken
    failed = post(client, case.path, case.who, case.body, key="k")
    client.app.state.resolver = public
    retried = post(client, case.path, case.who, case.body, key="k")

    assert failed.status_code == 500, failed.text
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert case.effects() == 1


def test_a_request_still_running_answers_in_use_until_its_process_is_presumed_dead(client):
    case = organization_case(client)
    clock.pin(T0)
    assert post(client, case.path, case.who, case.body, key="k").status_code == 201
    db(IdempotentResponse.update({IdempotentResponse.status: None}, force=True).run())  # as if still running

    clock.pin(T0 + timedelta(minutes=4))
    busy = post(client, case.path, case.who, case.body, key="k")
    clock.pin(T0 + timedelta(minutes=6))
    taken_over = post(client, case.path, case.who, case.body, key="k")
    replayed = post(client, case.path, case.who, case.body, key="k")

    builders.refused(busy, 409, "idempotency_key_in_use")
    assert busy.headers["retry-after"] == "1"
    assert taken_over.status_code == 201 and "idempotent-replayed" not in taken_over.headers
    assert replayed.json() == taken_over.json() and replayed.headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize("key", ["", "   ", "k" * 201])
def test_an_invalid_key_is_refused_and_nothing_is_done(client, key):
    case = team_case(client)

    builders.refused(post(client, case.path, case.who, case.body, key=key), 422, "invalid_idempotency_key")

    assert case.effects() == 0
    assert stored_rows() == []


def test_a_delivery_retry_with_a_key_is_asked_once(client):
    owner = builders.person(client)
    org = builders.organization(client, owner)
    endpoint = post(
        client, f"/v1/organizations/{org}/webhook-endpoints", owner, {"url": HOOK, "event_types": []}
    ).json()["id"]

    async def one_delivery() -> str:
        now = clock.now()
        async with transaction():
            await events.record("tier.changed", org, now, data={})
            event_id = (await Event.select(Event.id).where(Event.organization_id == org).first())["id"]
            (delivery,) = await deliveries.add_deliveries([(endpoint, event_id)], now)
            await deliveries.settle(delivery, now, "failed", None)
        return delivery

    delivery = db(one_delivery())
    path = f"/v1/organizations/{org}/webhook-endpoints/{endpoint}/deliveries/{delivery}/retry"

    first = post(client, path, owner, key="retry-1")
    second = post(client, path, owner, key="retry-1")
    unkeyed = post(client, path, owner)  # the attempt asked first is in flight: not asked twice

    assert first.status_code == 202, first.text
    assert (second.status_code, second.json()) == (202, first.json())
    assert second.headers["idempotent-replayed"] == "true"
    builders.refused(unkeyed, 404, "not_found")


def test_stored_answers_are_forgotten_after_24_hours(client, settings):
    old_case = organization_case(client)
    clock.pin(T0)
    old = post(client, old_case.path, old_case.who, old_case.body, key="old")
    clock.pin(T0 + timedelta(hours=20))
    young = post(client, old_case.path, old_case.who, old_case.body, key="young")

    clock.pin(T0 + timedelta(hours=25))
    deleted = db(retention.run(settings))

    assert deleted["idempotent_responses"] == 1
    again_old = post(client, old_case.path, old_case.who, old_case.body, key="old")
    again_young = post(client, old_case.path, old_case.who, old_case.body, key="young")
    assert again_old.status_code == 201 and again_old.json()["id"] != old.json()["id"]
    assert again_young.json() == young.json() and again_young.headers["idempotent-replayed"] == "true"
    assert old_case.effects() == 3


def test_the_routes_that_keep_their_own_keys_are_routes_of_the_app(client):
    from litestar.routes import HTTPRoute

    from web.idempotent_posts import NO_KEY_ROUTES, OPERATION_ROUTES

    posts = {
        route.path_format for route in client.app.routes if isinstance(route, HTTPRoute) and "POST" in route.methods
    }

    assert OPERATION_ROUTES | NO_KEY_ROUTES <= posts


def test_a_control_character_in_the_path_is_refused_before_any_key_is_kept(client):
    owner = builders.person(client)
    org = builders.organization(client, owner)

    answer = post(
        client, f"/v1/organizations/{org}/teams/team_%00x/members", owner, {"email": owner.email}, key="nul-in-path"
    )

    builders.refused(answer, 400, "invalid_request")
    assert "team_id" in answer.json()["error"]["message"]
    assert stored_rows() == []
