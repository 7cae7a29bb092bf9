"""Organizations, teams and members: the Owner team, permissions, and never leaving without an owner."""

from __future__ import annotations

import pytest

from tests.api import builders as b
from tests.api.builders import refused


def orgs_in_me(client, who: b.Person) -> list[str]:
    return [o["id"] for o in client.get("/v1/me", headers=who.auth).json()["organizations"]]


def test_creating_an_organization_puts_the_creator_in_the_owner_team(client):
    ada = b.person(client, "Ada")

    answer = client.post("/v1/organizations", json={"name": "Acme"}, headers=ada.auth)

    assert answer.status_code == 201, answer.text
    org = answer.json()
    assert org["name"] == "Acme" and org["reseller"] is False and org["currency"] == "EUR"
    assert client.get(f"/v1/organizations/{org['id']}", headers=ada.auth).json()["id"] == org["id"]
    teams = b.teams_of(client, ada, org["id"])
    assert len(teams) == 1
    owners = teams[0]
    assert owners["name"] == "Owners" and owners["owner"] is True
    assert sorted(owners["permissions"]) == sorted(b.PERMISSIONS)
    assert len(owners["permissions"]) == 13
    assert [m["id"] for m in owners["members"]] == [ada.id]
    assert owners["members"][0]["email"] == ada.email
    assert orgs_in_me(client, ada) == [org["id"]]


@pytest.mark.parametrize("reseller", [True, False])
def test_the_reseller_flag_round_trips(client, reseller):
    ada = b.person(client)

    created = client.post("/v1/organizations", json={"name": "Shop", "reseller": reseller}, headers=ada.auth)

    assert created.status_code == 201, created.text
    assert created.json()["reseller"] is reseller
    org = created.json()["id"]
    assert client.get(f"/v1/organizations/{org}", headers=ada.auth).json()["reseller"] is reseller
    assert client.get("/v1/me", headers=ada.auth).json()["organizations"][0]["reseller"] is reseller


@pytest.mark.parametrize(
    "body, named",
    [
        ({}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "Acme", "reseller": "yes"}, "reseller"),
        ({"name": "Acme", "currency": "usd"}, "currency"),
        ({"name": "Acme", "owner": "someone"}, "owner"),
    ],
    ids=["missing-name", "blank-name", "reseller-not-bool", "lower-case-currency", "extra-field"],
)
def test_a_malformed_organization_is_refused(client, body, named):
    ada = b.person(client)

    message = refused(client.post("/v1/organizations", json=body, headers=ada.auth), 400, "invalid_request")

    assert named in message
    assert orgs_in_me(client, ada) == []


def test_teams_are_created_and_listed_with_their_permissions(client):
    ada = b.person(client)
    org = b.organization(client, ada)

    answer = client.post(
        f"/v1/organizations/{org}/teams",
        json={"name": "Billing", "permissions": ["billing:view", "billing:manage"]},
        headers=ada.auth,
    )
    empty = client.post(f"/v1/organizations/{org}/teams", json={"name": "Nobody"}, headers=ada.auth)

    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["name"] == "Billing" and created["owner"] is False and created["members"] == []
    assert sorted(created["permissions"]) == ["billing:manage", "billing:view"]
    assert empty.status_code == 201, empty.text
    assert empty.json()["permissions"] == []
    teams = {t["name"]: t for t in b.teams_of(client, ada, org)}
    assert set(teams) == {"Owners", "Billing", "Nobody"}
    assert teams["Billing"]["id"] == created["id"]
    assert sorted(teams["Billing"]["permissions"]) == ["billing:manage", "billing:view"]
    assert teams["Nobody"]["permissions"] == []


def test_an_unknown_permission_is_refused_and_named(client):
    ada = b.person(client)
    org = b.organization(client, ada)

    answer = client.post(
        f"/v1/organizations/{org}/teams",
        json={"name": "Root", "permissions": ["org:view", "org:delete", "god_mode"]},
        headers=ada.auth,
    )

    message = refused(answer, 422, "unknown_permission")
    assert "org:delete" in message and "god_mode" in message
    assert [t["name"] for t in b.teams_of(client, ada, org)] == ["Owners"]


@pytest.mark.parametrize(
    "first, second",
    [
        ("Sales", "Sales"),
        ("Sales", "sales"),
        ("Sales", "  Sales "),
        (None, "Owners"),
        (None, "owners"),
    ],
    ids=["same", "other-case", "padded", "owners", "owners-lower-case"],
)
def test_a_team_name_already_used_is_refused(client, first, second):
    ada = b.person(client)
    org = b.organization(client, ada)
    if first:
        b.team(client, ada, org, ["org:view"], name=first)
    before = b.teams_of(client, ada, org)

    answer = client.post(
        f"/v1/organizations/{org}/teams", json={"name": second, "permissions": ["org:manage"]}, headers=ada.auth
    )

    refused(answer, 409, "team_name_taken")
    assert b.teams_of(client, ada, org) == before


def test_the_same_team_name_may_be_used_in_another_organization(client):
    ada = b.person(client)
    first, second = b.organization(client, ada), b.organization(client, ada)
    b.team(client, ada, first, [], name="Sales")

    b.team(client, ada, second, [], name="Sales")

    assert "Sales" in [t["name"] for t in b.teams_of(client, ada, second)]


def test_a_member_is_added_by_email(client):
    ada, bob = b.person(client, "Ada"), b.person(client, "Bob")
    org = b.organization(client, ada)
    sales = b.team(client, ada, org, ["org:view"], name="Sales")

    answer = client.post(
        f"/v1/organizations/{org}/teams/{sales}/members", json={"email": bob.email.upper()}, headers=ada.auth
    )

    assert answer.status_code == 201, answer.text
    assert answer.json()["id"] == bob.id and answer.json()["email"] == bob.email
    assert b.member_ids(client, ada, org, sales) == [bob.id]
    assert client.get(f"/v1/organizations/{org}", headers=bob.auth).status_code == 200
    me = client.get("/v1/me", headers=bob.auth).json()
    assert [(o["id"], [t["id"] for t in o["teams"]]) for o in me["organizations"]] == [(org, [sales])]


def test_adding_an_email_without_an_account_is_refused(client):
    ada = b.person(client)
    org = b.organization(client, ada)
    sales = b.team(client, ada, org, ["org:view"])

    answer = client.post(
        f"/v1/organizations/{org}/teams/{sales}/members", json={"email": "nobody@example.test"}, headers=ada.auth
    )

    assert "nobody@example.test" in refused(answer, 422, "unknown_account")
    assert b.member_ids(client, ada, org, sales) == []


def test_adding_a_member_twice_is_refused(client):
    ada, bob = b.person(client, "Ada"), b.person(client, "Bob")
    org = b.organization(client, ada)
    sales = b.team(client, ada, org, ["org:view"])
    b.add_to_team(client, ada, org, sales, bob)

    answer = client.post(f"/v1/organizations/{org}/teams/{sales}/members", json={"email": bob.email}, headers=ada.auth)

    refused(answer, 409, "already_member")
    assert b.member_ids(client, ada, org, sales) == [bob.id]


def test_the_same_person_may_be_in_several_teams(client):
    ada, bob = b.person(client, "Ada"), b.person(client, "Bob")
    org = b.organization(client, ada)
    sales, support = b.team(client, ada, org, ["org:view"]), b.team(client, ada, org, ["billing:view"])

    b.add_to_team(client, ada, org, sales, bob)
    b.add_to_team(client, ada, org, support, bob)

    assert b.member_ids(client, ada, org, sales) == [bob.id]
    assert b.member_ids(client, ada, org, support) == [bob.id]


@pytest.mark.parametrize(
    "body",
    [{}, {"email": "not-an-email"}, {"email": "b@example.test", "team": "x"}],
    ids=["missing", "bad-email", "extra-field"],
)
def test_a_malformed_member_is_refused(client, body):
    ada = b.person(client)
    org = b.organization(client, ada)
    sales = b.team(client, ada, org, ["org:view"])

    answer = client.post(f"/v1/organizations/{org}/teams/{sales}/members", json=body, headers=ada.auth)

    refused(answer, 400, "invalid_request")
    assert b.member_ids(client, ada, org, sales) == []


def test_adding_to_an_unknown_team_is_not_found(client):
    ada, bob = b.person(client, "Ada"), b.person(client, "Bob")
    org = b.organization(client, ada)

    answer = client.post(
        f"/v1/organizations/{org}/teams/team_unknown/members", json={"email": bob.email}, headers=ada.auth
    )

    refused(answer, 404, "not_found")
    assert orgs_in_me(client, bob) == []


def test_a_member_is_removed(client):
    ada, bob = b.person(client, "Ada"), b.person(client, "Bob")
    org = b.organization(client, ada)
    sales = b.team(client, ada, org, ["org:view"])
    b.add_to_team(client, ada, org, sales, bob)

    answer = client.delete(f"/v1/organizations/{org}/teams/{sales}/members/{bob.id}", headers=ada.auth)

    assert answer.status_code == 204, answer.text
    assert answer.content == b""
    assert b.member_ids(client, ada, org, sales) == []
    refused(client.get(f"/v1/organizations/{org}", headers=bob.auth), 404, "not_found")
    assert orgs_in_me(client, bob) == []


def test_removing_from_one_team_keeps_the_other_teams(client):
    ada, bob = b.person(client, "Ada"), b.person(client, "Bob")
    org = b.organization(client, ada)
    sales, support = b.team(client, ada, org, ["org:view"]), b.team(client, ada, org, ["org:view"])
    b.add_to_team(client, ada, org, sales, bob)
    b.add_to_team(client, ada, org, support, bob)

    client.delete(f"/v1/organizations/{org}/teams/{sales}/members/{bob.id}", headers=ada.auth)

    assert b.member_ids(client, ada, org, sales) == []
    assert b.member_ids(client, ada, org, support) == [bob.id]
    assert client.get(f"/v1/organizations/{org}", headers=bob.auth).status_code == 200


def test_removing_someone_who_is_not_in_the_team_is_not_found(client):
    ada, bob = b.person(client, "Ada"), b.person(client, "Bob")
    org = b.organization(client, ada)
    sales, support = b.team(client, ada, org, ["org:view"]), b.team(client, ada, org, ["org:view"])
    b.add_to_team(client, ada, org, support, bob)

    answer = client.delete(f"/v1/organizations/{org}/teams/{sales}/members/{bob.id}", headers=ada.auth)

    refused(answer, 404, "not_found")
    assert b.member_ids(client, ada, org, support) == [bob.id]


def test_removing_the_last_owner_is_refused(client):
    ada = b.person(client)
    org = b.organization(client, ada)
    owners = b.owners_team(client, ada, org)

    answer = client.delete(f"/v1/organizations/{org}/teams/{owners}/members/{ada.id}", headers=ada.auth)

    refused(answer, 409, "last_owner")
    assert b.member_ids(client, ada, org, owners) == [ada.id]


def test_the_last_owner_cannot_be_removed_by_another_manager(client):
    ada = b.person(client, "Ada")
    org = b.organization(client, ada)
    owners = b.owners_team(client, ada, org)
    manager = b.member(client, ada, org, ["org:view", "org:manage"], name="Manager")

    answer = client.delete(f"/v1/organizations/{org}/teams/{owners}/members/{ada.id}", headers=manager.auth)

    refused(answer, 403, "permission_denied")  # only owners change the Owner team at all
    assert b.member_ids(client, ada, org, owners) == [ada.id]


def test_with_two_owners_one_can_be_removed_but_not_the_second(client):
    ada, bob = b.person(client, "Ada"), b.person(client, "Bob")
    org = b.organization(client, ada)
    owners = b.owners_team(client, ada, org)
    b.add_to_team(client, ada, org, owners, bob)

    removed = client.delete(f"/v1/organizations/{org}/teams/{owners}/members/{ada.id}", headers=bob.auth)

    assert removed.status_code == 204, removed.text
    assert b.member_ids(client, bob, org, owners) == [bob.id]
    refused(client.get(f"/v1/organizations/{org}", headers=ada.auth), 404, "not_found")
    again = client.delete(f"/v1/organizations/{org}/teams/{owners}/members/{bob.id}", headers=bob.auth)
    refused(again, 409, "last_owner")
    assert b.member_ids(client, bob, org, owners) == [bob.id]


def test_the_last_owner_cannot_leave(client):
    ada = b.person(client)
    org = b.organization(client, ada)
    owners = b.owners_team(client, ada, org)

    refused(client.post(f"/v1/organizations/{org}/leave", headers=ada.auth), 409, "last_owner")

    assert b.member_ids(client, ada, org, owners) == [ada.id]
    assert orgs_in_me(client, ada) == [org]


def test_the_last_owner_cannot_leave_even_while_also_in_another_team(client):
    ada, bob = b.person(client, "Ada"), b.person(client, "Bob")
    org = b.organization(client, ada)
    owners = b.owners_team(client, ada, org)
    sales = b.team(client, ada, org, ["org:view"])
    b.add_to_team(client, ada, org, sales, ada)
    b.add_to_team(client, ada, org, sales, bob)

    refused(client.post(f"/v1/organizations/{org}/leave", headers=ada.auth), 409, "last_owner")

    assert b.member_ids(client, ada, org, owners) == [ada.id]
    assert sorted(b.member_ids(client, ada, org, sales)) == sorted([ada.id, bob.id])


def test_a_member_who_is_not_an_owner_leaves(client):
    ada = b.person(client, "Ada")
    org = b.organization(client, ada)
    bob = b.member(client, ada, org, ["org:view"], name="Bob")
    second_team = b.team(client, ada, org, [])
    b.add_to_team(client, ada, org, second_team, bob)

    answer = client.post(f"/v1/organizations/{org}/leave", headers=bob.auth)

    assert answer.status_code == 204, answer.text
    refused(client.get(f"/v1/organizations/{org}", headers=bob.auth), 404, "not_found")
    assert orgs_in_me(client, bob) == []
    assert all(bob.id not in [m["id"] for m in t["members"]] for t in b.teams_of(client, ada, org))
    # The organization itself is untouched.
    assert client.get(f"/v1/organizations/{org}", headers=ada.auth).status_code == 200
    refused(client.post(f"/v1/organizations/{org}/leave", headers=bob.auth), 404, "not_found")


def test_an_owner_leaves_when_another_owner_remains(client):
    ada, bob = b.person(client, "Ada"), b.person(client, "Bob")
    org = b.organization(client, ada)
    owners = b.owners_team(client, ada, org)
    b.add_to_team(client, ada, org, owners, bob)

    answer = client.post(f"/v1/organizations/{org}/leave", headers=ada.auth)

    assert answer.status_code == 204, answer.text
    assert b.member_ids(client, bob, org, owners) == [bob.id]
    refused(client.post(f"/v1/organizations/{org}/leave", headers=bob.auth), 409, "last_owner")


def test_leaving_one_organization_keeps_the_others(client):
    ada, bob = b.person(client, "Ada"), b.person(client, "Bob")
    first = b.organization(client, ada, name="First")
    second = b.organization(client, ada, name="Second")
    own = b.organization(client, bob, name="Bob's")
    for org in (first, second):
        b.add_to_team(client, ada, org, b.team(client, ada, org, ["org:view"]), bob)
    assert sorted(orgs_in_me(client, bob)) == sorted([first, second, own])

    assert client.post(f"/v1/organizations/{first}/leave", headers=bob.auth).status_code == 204

    assert sorted(orgs_in_me(client, bob)) == sorted([second, own])
    assert client.get(f"/v1/organizations/{second}", headers=bob.auth).status_code == 200
    assert client.get(f"/v1/organizations/{own}", headers=bob.auth).status_code == 200


@pytest.mark.parametrize("currency", ["EUR", "USD", "GBP"])
def test_an_organization_is_billed_in_the_currency_it_chose(client, currency):
    ada = b.person(client)

    created = client.post("/v1/organizations", json={"name": "Shop", "currency": currency}, headers=ada.auth)

    assert created.status_code == 201, created.text
    org = created.json()["id"]
    assert created.json()["currency"] == currency
    billing = client.get(f"/v1/organizations/{org}/billing", headers=ada.auth).json()
    assert billing["balance"] == {"amount": 0, "currency": currency}
    assert billing["owed"]["currency"] == billing["next_tier_at"]["currency"] == currency


def test_an_unknown_currency_is_refused_with_the_accepted_ones(client):
    ada = b.person(client)

    message = refused(
        client.post("/v1/organizations", json={"name": "Shop", "currency": "CHF"}, headers=ada.auth),
        400,
        "unknown_currency",
    )

    assert "EUR, USD, GBP" in message
    assert client.get("/v1/me", headers=ada.auth).json()["organizations"] == []


def test_tenure_currencies_limits_the_choice(database_url):
    from litestar.testing import TestClient

    from runtime.settings import Settings
    from tests.ratelimits import UNLIMITED
    from web.app import create_app

    with TestClient(create_app(Settings(database_url=database_url, currencies="GBP", **UNLIMITED))) as client:
        ada = b.person(client)
        message = refused(
            client.post("/v1/organizations", json={"name": "Shop", "currency": "EUR"}, headers=ada.auth),
            400,
            "unknown_currency",
        )
        assert "accepted currencies are: GBP" in message
        made = client.post("/v1/organizations", json={"name": "Shop"}, headers=ada.auth)
        assert made.status_code == 201, made.text
        assert made.json()["currency"] == "GBP"  # the first accepted one, when none is chosen


def test_a_currency_without_a_price_list_cannot_be_offered():
    from runtime.settings import Settings
    from web.app import create_app

    with pytest.raises(ValueError, match="CHF"):
        create_app(Settings(currencies="EUR,CHF"))
