"""`Dry-Run: 1`: the checks of the real request and its quote, with nothing written.

Through the app on both databases, without workers: what needs products to exist is in
tests/integration/test_dry_runs.py.
"""

from __future__ import annotations

import asyncio

import pytest

from tables.operations import Operation
from tests.api import builders as b
from tests.api.builders import refused

DRY = {"Dry-Run": "1"}
DOMAIN = {"kind": "domain", "name": "essai.fr", "years": 2, "payment_method": "prepaid"}


def operation_count() -> int:
    """Operations other than top-ups (the builders fund organizations)."""
    return asyncio.run(Operation.count().where(Operation.kind != "topup").run())


def dry_purchase(client, who, org, body=None, **headers):
    return client.post(
        f"/v1/organizations/{org}/purchases", json=body or DOMAIN, headers={**who.auth, **DRY, **headers}
    )


def test_a_dry_run_purchase_answers_the_quote_and_buys_nothing(client):
    owner, org = b.funded(client, 10_000)

    answer = dry_purchase(client, owner, org)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["dry_run"] is True and body["would_fail"] is None
    quote = body["quote"]
    assert quote["price"] == quote["list_price"] == {"amount": 3000, "currency": "EUR"}
    assert (quote["tier"], quote["discount_percent"]) == ("A", 0)
    assert quote["restore_fee"] == {"amount": 0, "currency": "EUR"}
    assert (quote["payer"], quote["payment_method"]) == (org, "prepaid")
    assert quote["new_expires_at"].endswith("Z")
    assert operation_count() == 0
    assert b.balance(client, owner, org) == 10_000
    assert client.get(f"/v1/organizations/{org}/products", headers=owner.auth).json()["items"] == []


def test_a_dry_run_reports_missing_funds_with_the_quote(client):
    owner, org = b.funded(client, 1_000)

    body = dry_purchase(client, owner, org).json()

    assert body["would_fail"]["code"] == "insufficient_funds"
    assert "top up at least 20.00 EUR" in body["would_fail"]["message"]
    assert body["quote"]["price"] == {"amount": 3000, "currency": "EUR"}
    assert operation_count() == 0


def test_paying_by_invoice_needs_no_funds_within_the_credit_limit(client):
    owner = b.person(client)
    org = b.organization(client, owner)
    b.credit_limit(client, org, 3000)

    body = dry_purchase(client, owner, org, {**DOMAIN, "payment_method": "invoice"}).json()

    assert body["would_fail"] is None
    assert body["quote"]["payment_method"] == "invoice"


def test_paying_by_invoice_past_the_credit_limit_would_fail(client):
    owner = b.person(client)
    org = b.organization(client, owner)
    b.credit_limit(client, org, 2999)

    body = dry_purchase(client, owner, org, {**DOMAIN, "payment_method": "invoice"}).json()

    assert body["would_fail"]["code"] == "credit_limit_exceeded"
    assert operation_count() == 0


@pytest.mark.parametrize(
    "body, code",
    [
        ({**DOMAIN, "name": "no_tld"}, "invalid_name"),
        ({**DOMAIN, "client": "cli_x"}, "client_not_allowed"),
    ],
)
def test_a_broken_rule_is_would_fail_not_an_error(client, body, code):
    owner, org = b.funded(client, 10_000)

    answer = dry_purchase(client, owner, org, body)

    assert answer.status_code == 200, answer.text
    assert answer.json()["would_fail"]["code"] == code
    assert answer.json()["quote"] is None
    assert operation_count() == 0


@pytest.mark.parametrize(
    "held, code", [(["product:view"], "permission_denied"), (["product:buy"], "payment_method_not_allowed")]
)
def test_a_missing_permission_is_would_fail_without_a_price(client, held, code):
    owner, org = b.funded(client, 10_000)
    member = b.member(client, owner, org, held)

    body = dry_purchase(client, member, org).json()

    assert body["would_fail"]["code"] == code
    assert body["quote"] is None


def test_tenancy_authentication_and_validation_keep_their_answers(client):
    owner, org = b.funded(client, 10_000)
    outsider = b.person(client, "Eve")
    b.organization(client, outsider)

    refused(client.post(f"/v1/organizations/{org}/purchases", json=DOMAIN, headers=DRY), 401, "unauthorized")
    refused(dry_purchase(client, outsider, org), 404, "not_found")
    refused(dry_purchase(client, owner, org, {**DOMAIN, "years": 11}), 400, "invalid_request")
    assert operation_count() == 0


@pytest.mark.parametrize("value", ["0", "true", "yes", "11", ""])
def test_any_other_dry_run_value_is_refused_naming_the_header(client, value):
    owner, org = b.funded(client, 10_000)

    message = refused(
        client.post(f"/v1/organizations/{org}/purchases", json=DOMAIN, headers={**owner.auth, "Dry-Run": value}),
        400,
        "invalid_dry_run",
    )

    assert "Dry-Run" in message
    assert operation_count() == 0


def test_a_dry_run_neither_uses_nor_takes_an_idempotency_key(client):
    owner, org = b.funded(client, 10_000)
    key = {"Idempotency-Key": "same-key"}

    before = dry_purchase(client, owner, org, **key)
    real = client.post(f"/v1/organizations/{org}/purchases", json=DOMAIN, headers={**owner.auth, **key})
    after = dry_purchase(client, owner, org, {**DOMAIN, "years": 3}, **key)  # another body, same key

    assert before.status_code == 200 and after.status_code == 200, (before.text, after.text)
    assert real.status_code == 202, real.text
    assert after.json()["quote"]["price"]["amount"] == 4500
    assert operation_count() == 1


def test_a_dry_run_release_quotes_nothing_to_pay_and_releases_nothing(client):
    owner = b.person(client)
    reseller = b.organization(client, owner, reseller=True)
    client_id = b.client_of(client, owner, reseller)
    url = f"/v1/resellers/{reseller}/clients/{client_id}/release"

    answer = client.post(url, json={"owner_email": "new@owner.test"}, headers={**owner.auth, **DRY})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["would_fail"] is None
    assert body["quote"]["price"] == {"amount": 0, "currency": "EUR"}
    assert (body["quote"]["payer"], body["quote"]["payment_method"], body["quote"]["new_expires_at"]) == (
        None,
        None,
        None,
    )
    assert client.get(f"/v1/resellers/{reseller}/clients/{client_id}", headers=owner.auth).json()["status"] == "active"
    assert operation_count() == 0


def test_a_dry_run_release_reports_broken_rules_and_keeps_404s(client):
    owner = b.person(client)
    reseller = b.organization(client, owner, reseller=True)
    plain = b.organization(client, owner)
    other_owner = b.person(client, "Eve")
    other = b.organization(client, other_owner, reseller=True)
    theirs = b.client_of(client, other_owner, other)
    body = {"owner_email": "new@owner.test"}
    headers = {**owner.auth, **DRY}

    not_reseller = client.post(f"/v1/resellers/{plain}/clients/cli_x/release", json=body, headers=headers)
    assert not_reseller.json()["would_fail"]["code"] == "not_a_reseller"
    refused(
        client.post(f"/v1/resellers/{reseller}/clients/{theirs}/release", json=body, headers=headers), 404, "not_found"
    )
    refused(
        client.post(f"/v1/resellers/{other}/clients/{theirs}/release", json=body, headers=headers), 404, "not_found"
    )


# --- bulk renewals: what is checked before any product is read ---------------------------------


def batch(client, who, org, items, **headers):
    return client.post(f"/v1/organizations/{org}/renewals", json={"items": items}, headers={**who.auth, **headers})


def item(product_id="prd_x", **extra):
    return {"product_id": product_id, "years": 1, "current_expires_at": "2030-01-01T00:00:00Z", **extra}


@pytest.mark.parametrize("count", [0, 1001])
def test_a_batch_holds_one_to_a_thousand_items(client, count):
    owner, org = b.funded(client, 10_000)

    message = refused(batch(client, owner, org, [item(f"prd_{i}") for i in range(count)]), 400, "invalid_request")

    assert "items" in message
    assert operation_count() == 0


def test_a_product_twice_in_a_batch_is_refused_naming_it(client):
    owner, org = b.funded(client, 10_000)

    message = refused(
        batch(client, owner, org, [item("prd_a"), item("prd_b"), item("prd_a")]), 422, "duplicate_product"
    )

    assert "'prd_a'" in message and "prd_b" not in message
    assert operation_count() == 0


def test_a_batch_needs_product_renew_and_its_payment_methods(client):
    owner, org = b.funded(client, 10_000)
    viewer = b.member(client, owner, org, ["product:view", "pay:prepaid"])
    renewer = b.member(client, owner, org, ["product:renew", "pay:prepaid"])
    items = [item("prd_a"), item("prd_b", payment_method="invoice")]

    refused(batch(client, viewer, org, items), 403, "permission_denied")
    message = refused(batch(client, renewer, org, items), 403, "payment_method_not_allowed")
    dry = batch(client, renewer, org, items, **DRY)

    assert "pay:invoice" in message
    assert dry.status_code == 200, dry.text
    assert dry.json()["would_fail"]["code"] == "payment_method_not_allowed"
    assert (dry.json()["quote"], dry.json()["failing_items"]) == (None, 2)
    assert operation_count() == 0


def test_a_batch_for_another_organization_is_not_found(client):
    owner, org = b.funded(client, 10_000)
    outsider = b.person(client, "Eve")
    b.organization(client, outsider)

    refused(batch(client, outsider, org, [item()]), 404, "not_found")
    refused(batch(client, outsider, org, [item()], **DRY), 404, "not_found")
    refused(client.post(f"/v1/organizations/{org}/renewals", json={"items": [item()]}), 401, "unauthorized")
    assert operation_count() == 0


def test_a_dry_run_batch_of_unknown_products_fails_each_as_not_found(client):
    owner, org = b.funded(client, 10_000)

    answer = batch(client, owner, org, [item("prd_a"), item("prd_b")], **DRY)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(i["product_id"], i["would_fail"]["code"], i["quote"]) for i in body["items"]] == [
        ("prd_a", "not_found", None),
        ("prd_b", "not_found", None),
    ]
    assert body["failing_items"] == 2
    assert body["quote"]["price"] == {"amount": 0, "currency": "EUR"}
    assert operation_count() == 0
