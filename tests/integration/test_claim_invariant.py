"""Property: whatever the order of releases, claims, reissues, expiries and departures, a
released organization always has an owner or an unclaimed claim holding it, and only people
who presented its token (or whom its owners added) are in it."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from runtime.clock import clock
from tables import claims
from tables.teams import Membership
from tests.api import builders
from tests.integration.flows import db, wait_done

CLIENTS = 2
PEOPLE = 3


class Releases(RuleBasedStateMachine):
    def __init__(self, api) -> None:
        super().__init__()
        self.api = api
        self.owner = builders.person(api, "Remy")
        self.reseller = builders.organization(api, self.owner, reseller=True)
        self.clients = [builders.client_of(api, self.owner, self.reseller, f"C{n}") for n in range(CLIENTS)]
        self.people = [builders.person(api, f"P{n}") for n in range(PEOPLE)]
        self.org_of: dict[str, str] = {}  # client -> released organization
        self.token_of: dict[str, str] = {}  # client -> newest token handed out
        self.allowed: dict[str, set[str]] = {}  # organization -> who may be in it

    @rule(n=st.integers(0, CLIENTS - 1))
    def release(self, n: int) -> None:
        client = self.clients[n]
        answer = self.api.post(
            f"/v1/resellers/{self.reseller}/clients/{client}/release",
            json={"owner_email": self.people[0].email},
            headers=self.owner.auth,
        )
        op = wait_done(self.api, self.owner, answer.json()["id"]) if answer.status_code == 202 else None
        if client in self.org_of:
            assert answer.status_code == 409 or op["status"] == "failed", answer.text
            return
        assert op["status"] == "succeeded", op
        self.org_of[client] = op["result"]["organization_id"]
        self.token_of[client] = op["result"]["claim_token"]
        self.allowed[self.org_of[client]] = set()

    @precondition(lambda self: self.org_of)
    @rule(n=st.integers(0, CLIENTS - 1), who=st.integers(0, PEOPLE - 1))
    def claim(self, n: int, who: int) -> None:
        client = self.clients[n]
        if client not in self.token_of:
            return
        person = self.people[who]
        answer = self.api.post("/v1/accounts/claim", json={"claim_token": self.token_of[client]}, headers=person.auth)
        if answer.status_code == 201:
            self.allowed[self.org_of[client]].add(person.id)
        else:
            builders.refused(answer, 422, "invalid_claim_token")

    @precondition(lambda self: self.org_of)
    @rule(n=st.integers(0, CLIENTS - 1))
    def reissue(self, n: int) -> None:
        client = self.clients[n]
        answer = self.api.post(f"/v1/resellers/{self.reseller}/clients/{client}/claim", headers=self.owner.auth)
        if answer.status_code == 201:
            self.token_of[client] = answer.json()["claim_token"]
        else:
            assert answer.json()["error"]["code"] in {"already_claimed", "client_not_released"}, answer.text

    @rule()
    def a_month_passes(self) -> None:
        clock.advance(timedelta(days=31))

    @precondition(lambda self: self.org_of)
    @rule(n=st.integers(0, CLIENTS - 1), who=st.integers(0, PEOPLE - 1))
    def leave(self, n: int, who: int) -> None:
        org = self.org_of.get(self.clients[n])
        if org is None:
            return
        person = self.people[who]
        answer = self.api.post(f"/v1/organizations/{org}/leave", headers=person.auth)
        if answer.status_code == 204:
            self.allowed[org].discard(person.id)
        else:
            assert answer.json()["error"]["code"] in {"last_owner", "not_found"}, answer.text

    @precondition(lambda self: self.org_of)
    @rule(n=st.integers(0, CLIENTS - 1), who=st.integers(0, PEOPLE - 1), by=st.integers(0, PEOPLE - 1))
    def add_owner(self, n: int, who: int, by: int) -> None:
        org = self.org_of.get(self.clients[n])
        if org is None:
            return
        adder, newcomer = self.people[by], self.people[who]
        teams = self.api.get(f"/v1/organizations/{org}/teams", headers=adder.auth)
        if teams.status_code != 200:
            assert teams.status_code == 404 and adder.id not in self.allowed[org]
            return
        owners = next(t["id"] for t in teams.json() if t["owner"])
        answer = self.api.post(
            f"/v1/organizations/{org}/teams/{owners}/members", json={"email": newcomer.email}, headers=adder.auth
        )
        if answer.status_code == 201:
            self.allowed[org].add(newcomer.id)

    @invariant()
    def every_released_organization_has_an_owner_or_a_claim(self) -> None:
        for org, allowed in self.allowed.items():
            members = {
                m["account"]
                for m in db(Membership.select(Membership.account).where(Membership.organization == org).run())
            }
            assert members == allowed
            assert members or db(claims.holds(org)), f"{org} has neither an owner nor a claim"


def test_a_released_organization_always_has_an_owner_or_a_claim(api, workers):
    workers()
    run_state_machine_as_test(
        lambda: Releases(api),
        settings=settings(
            max_examples=8, stateful_step_count=10, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )
