"""Invariant 3 (tenancy), route by route.

For every route so far, three callers who must be refused:
- anonymous: no API key → 401 `unauthorized`;
- outsider: owner (all permissions) of ANOTHER organization → 404 `not_found`, exactly the
  answer an unknown id gets, so existence is not revealed;
- unpermitted: a member of the organization holding every permission except the one the
  route needs → 403 `permission_denied` naming that permission.
After every refused write, the owner sees that nothing changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.api import builders as b
from tests.api.builders import refused

UNKNOWN_ORG = "org_00000000000000000000000000"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # placeholders: {org} {team} {member} {client}
    needs: str | None  # the permission a member needs; None: every member may act
    body: dict | None = None
    org_scoped: bool = True
    grants: tuple[str, ...] = ()  # permissions the route hands out: the caller must hold them too

    @property
    def writes(self) -> bool:
        return self.method != "GET"


ROUTES = {
    "GET /v1/me": Route("GET", "/v1/me", None, org_scoped=False),
    "GET org": Route("GET", "/v1/organizations/{org}", "org:view"),
    "GET teams": Route("GET", "/v1/organizations/{org}/teams", "org:view"),
    "POST teams": Route(
        "POST",
        "/v1/organizations/{org}/teams",
        "org:manage",
        {"name": "Intruders", "permissions": ["org:view"]},
        grants=("org:view",),
    ),
    "POST members": Route(
        "POST",
        "/v1/organizations/{org}/teams/{team}/members",
        "org:manage",
        {"email": "{newcomer}"},
        grants=("org:view",),
    ),
    "DELETE members": Route(
        "DELETE", "/v1/organizations/{org}/teams/{team}/members/{member}", "org:manage", grants=("org:view",)
    ),
    "POST leave": Route("POST", "/v1/organizations/{org}/leave", None),
    "POST funds": Route(
        "POST", "/v1/organizations/{org}/funds", "billing:manage", {"amount": {"amount": 1_000, "currency": "EUR"}}
    ),
    "GET billing": Route("GET", "/v1/organizations/{org}/billing", "billing:view"),
    "POST clients": Route(
        "POST", "/v1/resellers/{org}/clients", "client:manage", {"name": "Sneaky", "email": "sneaky@example.test"}
    ),
    "GET clients": Route("GET", "/v1/resellers/{org}/clients", "org:view"),
    "GET client": Route("GET", "/v1/resellers/{org}/clients/{client}", "org:view"),
    "PATCH client": Route("PATCH", "/v1/resellers/{org}/clients/{client}", "client:manage", {"name": "Renamed"}),
    "DELETE client": Route("DELETE", "/v1/resellers/{org}/clients/{client}", "client:manage"),
    "GET products": Route("GET", "/v1/organizations/{org}/products", "product:view"),
    "GET operations": Route("GET", "/v1/organizations/{org}/operations", "org:view"),
    "GET activity": Route("GET", "/v1/organizations/{org}/activity", "org:view"),
    "GET events": Route("GET", "/v1/organizations/{org}/events", "webhook:manage"),
    "GET transactions": Route("GET", "/v1/organizations/{org}/billing/transactions", "billing:view"),
    "GET statement": Route("GET", "/v1/organizations/{org}/billing/statements/2026-12", "billing:view"),
    "PATCH billing": Route(
        "PATCH",
        "/v1/organizations/{org}/billing",
        "billing:manage",
        {"low_balance_threshold": {"amount": 1_000, "currency": "EUR"}},
    ),
}


def _cases():
    for name, route in ROUTES.items():
        yield pytest.param(name, "anonymous", id=f"{name}-anonymous")
        if route.org_scoped:  # /v1/me belongs to no organization: only the key matters
            yield pytest.param(name, "outsider", id=f"{name}-outsider")
        if route.needs:  # leave needs no permission: every member may leave (tested elsewhere)
            yield pytest.param(name, "unpermitted", id=f"{name}-unpermitted")


@dataclass
class World:
    owner: b.Person
    org: str  # a reseller, so that every route applies to it
    team: str
    member: b.Person  # in `team`, the target of DELETE members
    newcomer: b.Person  # has an account, in no organization: the target of POST members
    client_id: str
    outsider: b.Person
    outsider_org: str

    def ids(self, org: str | None = None) -> dict[str, str]:
        return {
            "org": org or self.org,
            "team": self.team,
            "member": self.member.id,
            "client": self.client_id,
            "newcomer": self.newcomer.email,
        }


@pytest.fixture
def world(client) -> World:
    owner = b.person(client, "Owner")
    org = b.organization(client, owner, reseller=True, name="Secret Reseller")
    team = b.team(client, owner, org, ["org:view"], name="Staff")
    member = b.person(client, "Member")
    b.add_to_team(client, owner, org, team, member)
    b.fund(client, owner, org, 5_000)
    client_id = b.client_of(client, owner, org, name="Client")
    outsider = b.person(client, "Outsider")
    outsider_org = b.organization(client, outsider, reseller=True, name="Elsewhere")
    return World(owner, org, team, member, b.person(client, "Newcomer"), client_id, outsider, outsider_org)


def _fill(template, ids: dict[str, str]):
    if isinstance(template, str):
        return template.format(**ids)
    if isinstance(template, dict):
        return {k: _fill(v, ids) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, ids) for v in template]
    return template


def call(client, route: Route, ids: dict[str, str], headers: dict[str, str]):
    kwargs = {"headers": headers}
    if route.body is not None:
        kwargs["json"] = _fill(route.body, ids)
    return client.request(route.method, _fill(route.path, ids), **kwargs)


def state_seen_by_owner(client, world: World) -> dict:
    auth = world.owner.auth
    return {
        "teams": client.get(f"/v1/organizations/{world.org}/teams", headers=auth).json(),
        "billing": client.get(f"/v1/organizations/{world.org}/billing", headers=auth).json()["balance"],
        "clients": client.get(f"/v1/resellers/{world.org}/clients?status=all", headers=auth).json(),
        "newcomer_orgs": client.get("/v1/me", headers=world.newcomer.auth).json()["organizations"],
    }


@pytest.mark.parametrize("route_name, caller", list(_cases()))
def test_a_caller_without_access_is_refused_and_nothing_changes(client, world, route_name, caller):
    route = ROUTES[route_name]
    if caller == "unpermitted":
        everything_but = [p for p in b.PERMISSIONS if p != route.needs]
        who = b.member(client, world.owner, world.org, everything_but, name="Almost")
    before = state_seen_by_owner(client, world) if route.writes else None

    if caller == "anonymous":
        refused(call(client, route, world.ids(), {}), 401, "unauthorized")
    elif caller == "outsider":
        answer = call(client, route, world.ids(), world.outsider.auth)
        message = refused(answer, 404, "not_found")
        unknown = call(client, route, world.ids(org=UNKNOWN_ORG), world.outsider.auth)
        unknown_message = refused(unknown, 404, "not_found")
        assert message.replace(world.org, "<id>") == unknown_message.replace(UNKNOWN_ORG, "<id>")
        assert answer.json().keys() == unknown.json().keys()
        assert "Secret" not in answer.text
    else:
        message = refused(call(client, route, world.ids(), who.auth), 403, "permission_denied")
        assert route.needs in message

    if route.writes:
        assert state_seen_by_owner(client, world) == before


@pytest.mark.parametrize("route_name", [n for n, r in ROUTES.items() if r.needs])
def test_the_needed_permission_alone_is_enough(client, world, route_name):
    """Control for the table above: the 403s come from the one missing permission
    (plus, for team changes, the permissions the team hands out: no escalation)."""
    route = ROUTES[route_name]
    who = b.member(client, world.owner, world.org, [route.needs, *route.grants], name="Just")

    answer = call(client, route, world.ids(), who.auth)

    assert answer.status_code in (200, 201, 204), answer.text


FOREIGN_IDS_UNDER_OWN_ORG = {
    "add to a foreign team": ("POST", "/v1/organizations/{own}/teams/{team}/members", {"email": "{newcomer}"}),
    "remove from a foreign team": ("DELETE", "/v1/organizations/{own}/teams/{team}/members/{member}", None),
    "read a foreign client": ("GET", "/v1/resellers/{own}/clients/{client}", None),
    "edit a foreign client": ("PATCH", "/v1/resellers/{own}/clients/{client}", {"name": "Mine now"}),
    "delete a foreign client": ("DELETE", "/v1/resellers/{own}/clients/{client}", None),
}


@pytest.mark.parametrize("case", list(FOREIGN_IDS_UNDER_OWN_ORG))
def test_ids_of_another_organization_are_unknown_under_your_own(client, world, case):
    method, path, body = FOREIGN_IDS_UNDER_OWN_ORG[case]
    ids = {**world.ids(), "own": world.outsider_org}
    before = state_seen_by_owner(client, world)

    answer = client.request(
        method, _fill(path, ids), headers=world.outsider.auth, **({"json": _fill(body, ids)} if body else {})
    )

    refused(answer, 404, "not_found")
    assert state_seen_by_owner(client, world) == before


def test_a_settlement_for_another_organization_is_unknown(client, world):
    """Settlements need an Idempotency-Key (and something owed), so they stand apart from the table."""
    headers = {**world.outsider.auth, "Idempotency-Key": "payment-1"}
    body = {"amount": {"amount": 100, "currency": "EUR"}}

    for org in (world.org, UNKNOWN_ORG):
        answer = client.post(f"/v1/organizations/{org}/billing/settlements", json=body, headers=headers)
        refused(answer, 404, "not_found")
