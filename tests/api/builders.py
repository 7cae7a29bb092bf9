"""Small builders for API tests: each makes one thing through the public API."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

_seq = itertools.count(1)


@dataclass
class Person:
    id: str
    email: str
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def person(client, name: str = "Ada") -> Person:
    email = f"{name.lower()}{next(_seq)}@example.test"
    answer = client.post("/v1/accounts", json={"email": email, "name": name})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return Person(id=body["id"], email=email, key=body["api_key"])


def organization(client, owner: Person, *, reseller: bool = False, name: str = "Acme") -> str:
    answer = client.post("/v1/organizations", json={"name": name, "reseller": reseller}, headers=owner.auth)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def funded(client, amount: int, *, reseller: bool = False) -> tuple[Person, str]:
    """A new owner and their new organization, topped up with `amount` (minor units)."""
    owner = person(client)
    org = organization(client, owner, reseller=reseller)
    fund(client, owner, org, amount)
    return owner, org


def team(client, owner: Person, org: str, permissions: list[str], name: str | None = None) -> str:
    answer = client.post(
        f"/v1/organizations/{org}/teams",
        json={"name": name or f"team{next(_seq)}", "permissions": permissions},
        headers=owner.auth,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def member(client, owner: Person, org: str, permissions: list[str], name: str = "Bob") -> Person:
    """A new person in a new team of `org` holding exactly `permissions`."""
    newcomer = person(client, name)
    team_id = team(client, owner, org, permissions)
    answer = client.post(
        f"/v1/organizations/{org}/teams/{team_id}/members", json={"email": newcomer.email}, headers=owner.auth
    )
    assert answer.status_code == 201, answer.text
    return newcomer


def owners_team(client, who: Person, org: str) -> str:
    teams = client.get(f"/v1/organizations/{org}/teams", headers=who.auth).json()
    return next(t["id"] for t in teams if t["owner"])


def fund(client, owner: Person, org: str, amount: int) -> None:
    answer = client.post(
        f"/v1/organizations/{org}/funds", json={"amount": {"amount": amount, "currency": "EUR"}}, headers=owner.auth
    )
    assert answer.status_code == 201, answer.text


def credit_limit(client, org: str, amount: int, currency: str = "EUR", ops_token: str = "ops-secret") -> None:
    """Lets `org` owe up to `amount` on invoice (ops set it; the default is 0)."""
    answer = client.put(
        f"/v1/ops/organizations/{org}/credit-limit",
        json={"credit_limit": {"amount": amount, "currency": currency}},
        headers={"Authorization": f"Bearer {ops_token}"},
    )
    assert answer.status_code == 200, answer.text


def client_of(client, owner: Person, reseller: str, name: str = "Client", external_ref: str | None = None) -> str:
    body = {"name": name, "email": f"{name.lower()}{next(_seq)}@client.test"}
    if external_ref:
        body["external_ref"] = external_ref
    answer = client.post(f"/v1/resellers/{reseller}/clients", json=body, headers=owner.auth)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


# The permission names fixed by the HTTP contract (written out, not imported, on purpose).
PERMISSIONS = [
    "org:view",
    "org:manage",
    "billing:view",
    "billing:manage",
    "pay:prepaid",
    "pay:invoice",
    "product:view",
    "product:buy",
    "product:renew",
    "product:manage",
    "product:transfer",
    "client:manage",
    "webhook:manage",
]


def refused(answer, status: int, code: str) -> str:
    """Asserts an error answer `{"error": {"code", "message"}}`; returns its message."""
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code, answer.text
    assert isinstance(error["message"], str) and error["message"], answer.text
    return error["message"]


def teams_of(client, who: Person, org: str) -> list[dict]:
    answer = client.get(f"/v1/organizations/{org}/teams", headers=who.auth)
    assert answer.status_code == 200, answer.text
    return answer.json()


def member_ids(client, who: Person, org: str, team_id: str) -> list[str]:
    team_row = next(t for t in teams_of(client, who, org) if t["id"] == team_id)
    return [m["id"] for m in team_row["members"]]


def balance(client, who: Person, org: str) -> int:
    answer = client.get(f"/v1/organizations/{org}/billing", headers=who.auth)
    assert answer.status_code == 200, answer.text
    return answer.json()["balance"]["amount"]


def add_to_team(client, owner: Person, org: str, team_id: str, newcomer: Person) -> None:
    answer = client.post(
        f"/v1/organizations/{org}/teams/{team_id}/members", json={"email": newcomer.email}, headers=owner.auth
    )
    assert answer.status_code == 201, answer.text
