"""A reseller's portfolio of clients."""

from __future__ import annotations

import pytest

from tests.api import builders as b
from tests.api.builders import refused


@pytest.fixture
def owner(client):
    return b.person(client, "Rita")


@pytest.fixture
def reseller(client, owner):
    return b.organization(client, owner, reseller=True, name="Resell Co")


def portfolio(client, who, reseller, query: str = "") -> list[dict]:
    answer = client.get(f"/v1/resellers/{reseller}/clients{query}", headers=who.auth)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def test_a_reseller_creates_a_client(client, owner, reseller):
    answer = client.post(
        f"/v1/resellers/{reseller}/clients",
        json={"name": "Bakery", "email": "Boss@Bakery.test", "external_ref": "crm-42"},
        headers=owner.auth,
    )

    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["name"] == "Bakery"
    assert created["email"].lower() == "boss@bakery.test"
    assert created["external_ref"] == "crm-42"
    assert created["status"] == "active"
    assert created["product_count"] == 0
    assert created["reseller_id"] == reseller
    assert created["released_to"] is None
    fetched = client.get(f"/v1/resellers/{reseller}/clients/{created['id']}", headers=owner.auth)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == created
    assert [c["id"] for c in portfolio(client, owner, reseller)] == [created["id"]]


def test_a_client_needs_no_external_ref(client, owner, reseller):
    first = b.client_of(client, owner, reseller, name="One")
    second = b.client_of(client, owner, reseller, name="Two")

    fetched = client.get(f"/v1/resellers/{reseller}/clients/{first}", headers=owner.auth).json()
    assert fetched["external_ref"] is None
    assert {c["id"] for c in portfolio(client, owner, reseller)} == {first, second}


def test_the_portfolio_is_paginated(client, owner, reseller):
    created = {b.client_of(client, owner, reseller, name=f"C{i}") for i in range(5)}

    seen: list[str] = []
    pages = 0
    query = "?limit=2"
    while True:
        answer = client.get(f"/v1/resellers/{reseller}/clients{query}", headers=owner.auth)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        pages += 1
        assert len(page["items"]) <= 2
        seen += [c["id"] for c in page["items"]]
        if page["next_cursor"] is None:
            break
        query = f"?limit=2&after={page['next_cursor']}"
        assert pages < 10, "pagination does not end"

    assert pages == 3
    assert len(seen) == 5 and set(seen) == created
    whole = client.get(f"/v1/resellers/{reseller}/clients", headers=owner.auth).json()
    assert whole["next_cursor"] is None and [c["id"] for c in whole["items"]] == seen


def test_an_exact_last_page_has_no_cursor(client, owner, reseller):
    for i in range(2):
        b.client_of(client, owner, reseller, name=f"C{i}")

    page = client.get(f"/v1/resellers/{reseller}/clients?limit=2", headers=owner.auth).json()

    assert len(page["items"]) == 2 and page["next_cursor"] is None


@pytest.mark.parametrize(
    "query, named",
    [("?limit=0", "limit"), ("?limit=501", "limit"), ("?limit=ten", "limit"), ("?status=gone", "status")],
)
def test_bad_portfolio_queries_are_refused(client, owner, reseller, query, named):
    answer = client.get(f"/v1/resellers/{reseller}/clients{query}", headers=owner.auth)

    assert named in refused(answer, 400, "invalid_request")


def test_each_reseller_sees_only_its_own_portfolio(client, owner, reseller):
    other_owner = b.person(client, "Otto")
    other = b.organization(client, other_owner, reseller=True)
    mine = b.client_of(client, owner, reseller, name="Mine")
    theirs = b.client_of(client, other_owner, other, name="Theirs")

    assert [c["id"] for c in portfolio(client, owner, reseller)] == [mine]
    assert [c["id"] for c in portfolio(client, other_owner, other)] == [theirs]


def test_a_client_of_another_reseller_is_not_found(client, owner, reseller):
    other_owner = b.person(client, "Otto")
    other = b.organization(client, other_owner, reseller=True)
    theirs = b.client_of(client, other_owner, other, name="Theirs")

    answer = client.get(f"/v1/resellers/{reseller}/clients/{theirs}", headers=owner.auth)
    unknown = client.get(f"/v1/resellers/{reseller}/clients/cli_unknown", headers=owner.auth)

    refused(answer, 404, "not_found")
    refused(unknown, 404, "not_found")
    assert answer.json()["error"]["message"].replace(theirs, "?") == unknown.json()["error"]["message"].replace(
        "cli_unknown", "?"
    )


def test_a_client_of_another_reseller_is_not_found_even_for_an_owner_of_both(client, owner, reseller):
    second = b.organization(client, owner, reseller=True)
    theirs = b.client_of(client, owner, second, name="Other")

    refused(client.get(f"/v1/resellers/{reseller}/clients/{theirs}", headers=owner.auth), 404, "not_found")
    assert client.get(f"/v1/resellers/{second}/clients/{theirs}", headers=owner.auth).status_code == 200


def test_an_external_ref_already_used_is_refused(client, owner, reseller):
    b.client_of(client, owner, reseller, name="First", external_ref="crm-1")

    answer = client.post(
        f"/v1/resellers/{reseller}/clients",
        json={"name": "Second", "email": "s@example.test", "external_ref": "crm-1"},
        headers=owner.auth,
    )

    assert "crm-1" in refused(answer, 409, "external_ref_taken")
    assert [c["name"] for c in portfolio(client, owner, reseller)] == ["First"]


def test_the_same_external_ref_may_be_used_by_another_reseller(client, owner, reseller):
    other = b.organization(client, owner, reseller=True)
    b.client_of(client, owner, reseller, external_ref="crm-1")

    b.client_of(client, owner, other, external_ref="crm-1")

    assert len(portfolio(client, owner, other)) == 1


@pytest.mark.parametrize(
    "body, named",
    [
        ({"email": "a@example.test"}, "name"),
        ({"name": "A"}, "email"),
        ({"name": "A", "email": "nope"}, "email"),
        ({"name": "  ", "email": "a@example.test"}, "name"),
        ({"name": "A", "email": "a@example.test", "external_ref": ""}, "external_ref"),
        ({"name": "A", "email": "a@example.test", "api_key": "x"}, "api_key"),
    ],
    ids=["missing-name", "missing-email", "bad-email", "blank-name", "empty-ref", "extra-field"],
)
def test_a_malformed_client_is_refused(client, owner, reseller, body, named):
    answer = client.post(f"/v1/resellers/{reseller}/clients", json=body, headers=owner.auth)

    assert named in refused(answer, 400, "invalid_request")
    assert portfolio(client, owner, reseller) == []


def test_an_organization_that_is_not_a_reseller_has_no_clients(client, owner):
    plain = b.organization(client, owner, reseller=False)

    created = client.post(
        f"/v1/resellers/{plain}/clients", json={"name": "A", "email": "a@example.test"}, headers=owner.auth
    )
    listed = client.get(f"/v1/resellers/{plain}/clients", headers=owner.auth)
    fetched = client.get(f"/v1/resellers/{plain}/clients/cli_whatever", headers=owner.auth)

    refused(created, 409, "not_a_reseller")
    refused(listed, 409, "not_a_reseller")
    refused(fetched, 409, "not_a_reseller")
