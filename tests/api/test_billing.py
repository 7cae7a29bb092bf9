"""Prepaid top-ups (idempotent), the billing summary and the public catalog."""

from __future__ import annotations

import pytest

from tests.api import builders as b
from tests.api.builders import refused


@pytest.fixture
def owner(client):
    return b.person(client, "Ada")


@pytest.fixture
def org(client, owner):
    return b.organization(client, owner)


def top_up(client, who, org, amount, currency="EUR", key=None):
    headers = {**who.auth, **({"Idempotency-Key": key} if key is not None else {})}
    return client.post(
        f"/v1/organizations/{org}/funds", json={"amount": {"amount": amount, "currency": currency}}, headers=headers
    )


def test_a_top_up_answers_with_the_new_balance(client, owner, org):
    answer = top_up(client, owner, org, 5_000)

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert isinstance(body["operation_id"], str) and body["operation_id"]
    assert body["amount"] == {"amount": 5_000, "currency": "EUR"}
    assert body["balance"] == {"amount": 5_000, "currency": "EUR"}
    assert b.balance(client, owner, org) == 5_000


def test_a_new_organization_starts_at_tier_a_with_nothing(client, owner, org):
    answer = client.get(f"/v1/organizations/{org}/billing", headers=owner.auth)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["balance"] == {"amount": 0, "currency": "EUR"}
    assert body["volume_12m"] == {"amount": 0, "currency": "EUR"}
    assert body["tier"] == "A"
    assert body["discount_percent"] == 0
    assert body["next_tier_at"] == {"amount": 250_000, "currency": "EUR"}


def test_top_ups_add_up_and_do_not_count_as_volume(client, owner, org):
    first = top_up(client, owner, org, 1_500)
    second = top_up(client, owner, org, 2_500)

    assert second.json()["balance"]["amount"] == 4_000
    assert first.json()["operation_id"] != second.json()["operation_id"]
    billing = client.get(f"/v1/organizations/{org}/billing", headers=owner.auth).json()
    assert billing["balance"] == {"amount": 4_000, "currency": "EUR"}
    assert billing["volume_12m"]["amount"] == 0 and billing["tier"] == "A"


def test_balances_are_per_organization(client, owner, org):
    other = b.organization(client, owner)

    top_up(client, owner, org, 700)

    assert b.balance(client, owner, org) == 700
    assert b.balance(client, owner, other) == 0


def test_a_replayed_idempotency_key_returns_the_first_answer_and_adds_nothing(client, owner, org):
    first = top_up(client, owner, org, 1_000, key="topup-1")
    top_up(client, owner, org, 50)  # something else happens in between

    replay = top_up(client, owner, org, 1_000, key="topup-1")

    assert replay.status_code == 201, replay.text
    assert replay.json() == first.json()
    assert replay.json()["balance"]["amount"] == 1_000
    assert b.balance(client, owner, org) == 1_050


def test_a_replay_matches_on_content_not_json_formatting(client, owner, org):
    headers = {**owner.auth, "Idempotency-Key": "fmt", "Content-Type": "application/json"}
    first = client.post(
        f"/v1/organizations/{org}/funds", content=b'{"amount": {"amount": 300, "currency": "EUR"}}', headers=headers
    )

    replay = client.post(
        f"/v1/organizations/{org}/funds", content=b'{ "amount":{"currency":"EUR","amount":300} }', headers=headers
    )

    assert replay.status_code == 201, replay.text
    assert replay.json()["operation_id"] == first.json()["operation_id"]
    assert b.balance(client, owner, org) == 300


def test_a_key_reused_with_another_amount_is_refused(client, owner, org):
    top_up(client, owner, org, 1_000, key="topup-1")

    refused(top_up(client, owner, org, 2_000, key="topup-1"), 422, "idempotency_key_reused")

    assert b.balance(client, owner, org) == 1_000


def test_an_idempotency_key_belongs_to_one_organization(client, owner, org):
    other = b.organization(client, owner)

    first = top_up(client, owner, org, 1_000, key="shared")
    second = top_up(client, owner, other, 1_000, key="shared")

    assert second.status_code == 201, second.text
    assert second.json()["operation_id"] != first.json()["operation_id"]
    assert b.balance(client, owner, org) == 1_000
    assert b.balance(client, owner, other) == 1_000


@pytest.mark.parametrize("key", ["", "   ", "k" * 201], ids=["empty", "blank", "too-long"])
def test_a_malformed_idempotency_key_is_refused(client, owner, org, key):
    refused(top_up(client, owner, org, 1_000, key=key), 422, "invalid_idempotency_key")

    assert b.balance(client, owner, org) == 0


@pytest.mark.parametrize("amount", [0, -1, -5_000])
def test_a_top_up_that_is_not_positive_is_refused(client, owner, org, amount):
    refused(top_up(client, owner, org, amount), 422, "invalid_money")

    assert b.balance(client, owner, org) == 0


@pytest.mark.parametrize(
    "money, named",
    [
        ({"amount": 10.5, "currency": "EUR"}, "amount"),
        ({"amount": 10.0, "currency": "EUR"}, "amount"),  # strict: a whole float is not minor units
        ({"amount": "1000", "currency": "EUR"}, "amount"),
        ({"amount": True, "currency": "EUR"}, "amount"),
        ({"amount": 1000}, "currency"),
        ({"amount": 1000, "currency": "eur"}, "currency"),
        ({"amount": 1000, "currency": "EURO"}, "currency"),
        ({"amount": 10**12 + 1, "currency": "EUR"}, "amount"),
        ({"amount": 10**20, "currency": "EUR"}, "amount"),
    ],
    ids=[
        "float",
        "whole-float",
        "string",
        "bool",
        "no-currency",
        "lower-case-currency",
        "long-currency",
        "over-the-cap",
        "beyond-64-bits",
    ],
)
def test_a_malformed_amount_is_refused(client, owner, org, money, named):
    answer = client.post(f"/v1/organizations/{org}/funds", json={"amount": money}, headers=owner.auth)

    assert named in refused(answer, 400, "invalid_request")
    assert b.balance(client, owner, org) == 0


def test_a_bare_number_is_not_money(client, owner, org):
    answer = client.post(f"/v1/organizations/{org}/funds", json={"amount": 1000}, headers=owner.auth)

    refused(answer, 400, "invalid_request")
    assert b.balance(client, owner, org) == 0


def test_the_largest_top_up_is_accepted_exactly(client, owner, org):
    top_up(client, owner, org, 10**12)
    top_up(client, owner, org, 10**12)

    assert b.balance(client, owner, org) == 2 * 10**12


def test_a_top_up_in_another_currency_is_a_conflict(client, owner, org):
    # The organization is billed in EUR: a USD top-up is 409 currency_mismatch (not 422).
    message = refused(top_up(client, owner, org, 1_000, currency="USD"), 409, "currency_mismatch")

    assert "EUR" in message
    assert b.balance(client, owner, org) == 0
    assert client.get(f"/v1/organizations/{org}/billing", headers=owner.auth).json()["balance"] == {
        "amount": 0,
        "currency": "EUR",
    }


def test_the_catalog_lists_the_four_kinds_with_integer_yearly_prices(client):
    answer = client.get("/v1/catalog")  # public: no key needed

    assert answer.status_code == 200, answer.text
    kinds = {k["kind"]: k for k in answer.json()["kinds"]}
    assert set(kinds) == {"domain", "mailbox", "hosting", "certificate"}
    for entry in kinds.values():
        price = entry["yearly_price"]
        assert set(price) == {"amount", "currency"}
        assert type(price["amount"]) is int and price["amount"] > 0
        assert price["currency"] == "EUR"
    assert kinds["domain"]["yearly_price"]["amount"] == 1_500


def test_the_catalog_lists_the_tier_grid(client):
    tiers = client.get("/v1/catalog").json()["tiers"]

    assert [(t["name"], t["from"], t["discount_percent"]) for t in tiers] == [
        ("A", {"amount": 0, "currency": "EUR"}, 0),
        ("B", {"amount": 250_000, "currency": "EUR"}, 10),
        ("C", {"amount": 1_000_000, "currency": "EUR"}, 20),
        ("D", {"amount": 5_000_000, "currency": "EUR"}, 35),
        ("E", {"amount": 25_000_000, "currency": "EUR"}, 50),
    ]
