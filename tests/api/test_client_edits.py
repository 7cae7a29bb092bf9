"""A reseller edits and removes clients through the API, and searches and exports its portfolio."""

from __future__ import annotations

import pytest

from tests.api import builders as b
from tests.api.builders import refused
from tests.api.portfolio import csv_rows, every_page, listed, product


@pytest.fixture
def owner(client):
    return b.person(client, "Rita")


@pytest.fixture
def reseller(client, owner):
    return b.organization(client, owner, reseller=True, name="Resell Co")


def fetch(client, who, reseller, client_id):
    return client.get(f"/v1/resellers/{reseller}/clients/{client_id}", headers=who.auth)


def edit(client, who, reseller, client_id, body):
    return client.patch(f"/v1/resellers/{reseller}/clients/{client_id}", json=body, headers=who.auth)


def portfolio(client, who, reseller, query: str = "") -> list[str]:
    answer = client.get(f"/v1/resellers/{reseller}/clients{query}", headers=who.auth)
    assert answer.status_code == 200, answer.text
    return [c["name"] for c in answer.json()["items"]]


def test_a_reseller_edits_a_clients_details(client, owner, reseller):
    bakery = b.client_of(client, owner, reseller, name="Bakery", external_ref="crm-1")

    answer = edit(
        client,
        owner,
        reseller,
        bakery,
        {"name": " Bakery & Sons ", "email": "Boss@Bakery.test", "external_ref": "crm-2"},
    )

    assert answer.status_code == 200, answer.text
    edited = answer.json()
    assert (edited["name"], edited["email"], edited["external_ref"]) == ("Bakery & Sons", "boss@bakery.test", "crm-2")
    assert fetch(client, owner, reseller, bakery).json() == edited


def test_only_the_fields_sent_change_and_a_null_ref_is_removed(client, owner, reseller):
    bakery = b.client_of(client, owner, reseller, name="Bakery", external_ref="crm-1")
    before = fetch(client, owner, reseller, bakery).json()

    renamed = edit(client, owner, reseller, bakery, {"name": "Boulangerie"}).json()
    unreferenced = edit(client, owner, reseller, bakery, {"external_ref": None}).json()

    assert renamed == {**before, "name": "Boulangerie"}
    assert unreferenced == {**before, "name": "Boulangerie", "external_ref": None}
    b.client_of(client, owner, reseller, name="Newcomer", external_ref="crm-1")  # the old ref is free again


def test_a_ref_another_client_has_is_refused_and_nothing_changes(client, owner, reseller):
    b.client_of(client, owner, reseller, name="First", external_ref="crm-1")
    second = b.client_of(client, owner, reseller, name="Second", external_ref="crm-2")
    before = fetch(client, owner, reseller, second).json()

    answer = edit(client, owner, reseller, second, {"name": "Renamed", "external_ref": "crm-1"})

    assert "crm-1" in refused(answer, 409, "external_ref_taken")
    assert fetch(client, owner, reseller, second).json() == before
    assert edit(client, owner, reseller, second, {"external_ref": "crm-2"}).status_code == 200  # its own ref


@pytest.mark.parametrize(
    "body, named",
    [
        ({"name": "  "}, "name"),
        ({"email": "nope"}, "email"),
        ({"external_ref": ""}, "external_ref"),
        ({"status": "released"}, "status"),
        ({"name": 42}, "name"),
    ],
    ids=["blank-name", "bad-email", "empty-ref", "unknown-field", "not-a-string"],
)
def test_a_malformed_edit_is_refused(client, owner, reseller, body, named):
    bakery = b.client_of(client, owner, reseller, name="Bakery")

    assert named in refused(edit(client, owner, reseller, bakery, body), 400, "invalid_request")
    assert fetch(client, owner, reseller, bakery).json()["name"] == "Bakery"


def test_a_client_without_products_is_deleted(client, owner, reseller):
    bakery = b.client_of(client, owner, reseller, name="Bakery", external_ref="crm-1")
    kept = b.client_of(client, owner, reseller, name="Kept")

    answer = client.delete(f"/v1/resellers/{reseller}/clients/{bakery}", headers=owner.auth)

    assert answer.status_code == 204, answer.text
    refused(fetch(client, owner, reseller, bakery), 404, "not_found")
    assert portfolio(client, owner, reseller, "?status=all") == ["Kept"]
    refused(client.delete(f"/v1/resellers/{reseller}/clients/{bakery}", headers=owner.auth), 404, "not_found")
    b.client_of(client, owner, reseller, name="Again", external_ref="crm-1")
    assert kept


def test_a_client_with_products_is_not_deleted(client, owner, reseller):
    bakery = b.client_of(client, owner, reseller, name="Bakery")
    product(reseller, "bakery.test", client_id=bakery, state="grace")

    answer = client.delete(f"/v1/resellers/{reseller}/clients/{bakery}", headers=owner.auth)

    assert "1 product" in refused(answer, 409, "client_has_products")
    assert fetch(client, owner, reseller, bakery).status_code == 200


def test_a_client_whose_products_are_all_deleted_is_deleted_and_its_history_stays(client, owner, reseller):
    bakery = b.client_of(client, owner, reseller, name="Bakery")
    old = product(reseller, "old-bakery.test", client_id=bakery, state="deleted")

    answer = client.delete(f"/v1/resellers/{reseller}/clients/{bakery}", headers=owner.auth)

    assert answer.status_code == 204, answer.text
    history = listed(client, owner, reseller, "?state=deleted")["items"]
    assert [(p["id"], p["client_id"]) for p in history] == [(old, None)]


def test_the_portfolio_is_searched_by_name_email_or_external_ref(client, owner, reseller):
    for name, ref in [("Bakery", "crm-100"), ("Butcher", "crm-200"), ("Florist", None)]:
        b.client_of(client, owner, reseller, name=name, external_ref=ref)

    assert portfolio(client, owner, reseller, "?q=BAKE") == ["Bakery"]
    assert portfolio(client, owner, reseller, "?q=crm-2") == ["Butcher"]
    assert sorted(portfolio(client, owner, reseller, "?q=client.test")) == ["Bakery", "Butcher", "Florist"]
    assert portfolio(client, owner, reseller, "?q=%25") == []


def test_the_portfolio_sorts_by_name_and_pages_with_totals(client, owner, reseller):
    for name in ["Delta", "Alpha", "Charlie", "Bravo", "Echo"]:
        b.client_of(client, owner, reseller, name=name)

    seen, pages = every_page(client, owner, f"/v1/resellers/{reseller}/clients", "sort=name&order=desc", limit=2)
    counted = client.get(f"/v1/resellers/{reseller}/clients?q=a&count=true&limit=1", headers=owner.auth).json()

    assert pages == 3
    assert [c["name"] for c in seen] == sorted([c["name"] for c in seen], reverse=True)
    assert len(seen) == 5
    assert counted["total"] == 4 and len(counted["items"]) == 1  # Alpha, Charlie, Bravo, Delta


@pytest.mark.parametrize(
    "query, code",
    [
        ("?q=", "invalid_request"),
        ("?sort=email", "invalid_request"),
        ("?after=bad", "invalid_cursor"),
        ("?name=Bakery", "unknown_parameter"),
    ],
)
def test_bad_portfolio_searches_are_refused(client, owner, reseller, query, code):
    b.client_of(client, owner, reseller, name="Bakery")

    refused(client.get(f"/v1/resellers/{reseller}/clients{query}", headers=owner.auth), 400, code)


def test_the_portfolio_exports_as_csv_with_formulas_kept_as_text(client, owner, reseller):
    bakery = b.client_of(client, owner, reseller, name="Bakery", external_ref="crm-1")
    b.client_of(client, owner, reseller, name="=HYPERLINK(1)")
    product(reseller, "bakery.test", client_id=bakery)

    rows = csv_rows(
        client.get(f"/v1/resellers/{reseller}/clients?limit=1", headers={**owner.auth, "Accept": "text/csv"})
    )

    assert [r["name"] for r in rows] == ["Bakery", "'=HYPERLINK(1)"]
    assert rows[0]["external_ref"] == "crm-1" and rows[0]["product_count"] == "1" and rows[0]["id"] == bakery
    assert list(rows[0]) == [
        "id",
        "name",
        "email",
        "external_ref",
        "status",
        "released_to",
        "created_at",
        "product_count",
    ]
