"""Renewals: the expiry guard stops double renewals; lifecycle prices; the payer pays."""

from __future__ import annotations

from datetime import datetime, timedelta

from runtime.clock import clock
from tests.api import builders
from tests.integration.flows import balance, buy, charges_for, renew, wait_done


def bought(api, owner, org, name="renew.fr", **kwargs) -> dict:
    op = wait_done(api, owner, buy(api, owner, org, name, **kwargs).json()["id"])
    assert op["status"] == "succeeded", op
    return api.get(f"/v1/products/{op['result']['product_id']}", headers=owner.auth).json()


def test_renewal_extends_the_expiry_and_charges(api, workers):
    workers()
    owner, org = builders.funded(api, 10_000)
    product = bought(api, owner, org)

    op = wait_done(api, owner, renew(api, owner, product, years=2).json()["id"])

    assert op["status"] == "succeeded", op
    after = api.get(f"/v1/products/{product['id']}", headers=owner.auth).json()
    before = datetime.fromisoformat(product["expires_at"])
    assert datetime.fromisoformat(after["expires_at"]) == before.replace(year=before.year + 2)
    assert charges_for(org) == [1500, 3000]


def test_a_replayed_renewal_with_the_old_expiry_is_refused_at_once_with_expiry_mismatch(api, workers):
    workers()
    owner, org = builders.funded(api, 10_000)
    product = bought(api, owner, org)

    first = wait_done(api, owner, renew(api, owner, product).json()["id"])
    second = renew(api, owner, product)  # same guard, new request: the expiry has moved since

    assert first["status"] == "succeeded"
    message = builders.refused(second, 409, "expiry_mismatch")
    after = api.get(f"/v1/products/{product['id']}", headers=owner.auth).json()
    assert after["expires_at"].replace("+00:00", "Z") in message
    assert charges_for(org) == [1500, 1500]


def test_two_renewals_accepted_with_the_same_guard_renew_once(api, workers):
    worker = workers()
    owner, org = builders.funded(api, 10_000)
    product = bought(api, owner, org)
    worker.pause()  # nothing runs until resume()

    # Both pass the intake guard while nothing runs...
    first, second = renew(api, owner, product), renew(api, owner, product)
    assert (first.status_code, second.status_code) == (202, 202)
    worker.resume()
    ops = [wait_done(api, owner, answer.json()["id"]) for answer in (first, second)]

    # ...and the guard, checked again at execution, lets only one of them renew.
    assert sorted(op["status"] for op in ops) == ["failed", "succeeded"]
    assert [op["error"]["code"] for op in ops if op["status"] == "failed"] == ["expiry_mismatch"]
    assert charges_for(org) == [1500, 1500]


def test_renewal_in_redemption_adds_the_restore_fee_and_past_it_is_refused(api, workers):
    workers()
    owner, org = builders.funded(api, 100_000)
    product = bought(api, owner, org)
    expires = datetime.fromisoformat(product["expires_at"])

    clock.pin(expires + timedelta(days=40))  # grace is 30 days: now in redemption
    op = wait_done(api, owner, renew(api, owner, product).json()["id"])
    assert op["status"] == "succeeded", op
    assert op["result"]["restore_fee"] == {"amount": 8000, "currency": "EUR"}
    assert op["result"]["price"] == {"amount": 1500 + 8000, "currency": "EUR"}

    late = bought(api, owner, org, "late.fr")
    clock.pin(datetime.fromisoformat(late["expires_at"]) + timedelta(days=62))  # pending delete
    refused = wait_done(api, owner, renew(api, owner, late).json()["id"])
    assert refused["status"] == "failed"
    assert refused["error"]["code"] == "not_renewable"


def test_renewal_beyond_ten_years_ahead_is_refused(api, workers):
    workers()
    owner, org = builders.funded(api, 100_000)
    product = bought(api, owner, org, years=5)

    op = wait_done(api, owner, renew(api, owner, product, years=6).json()["id"])

    assert op["status"] == "failed"
    assert op["error"]["code"] == "invalid_term"
    assert charges_for(org) == [7500]


def test_insufficient_funds_fails_the_operation_without_any_effect(api, workers):
    workers()
    owner, org = builders.funded(api, 1000)

    op = wait_done(api, owner, buy(api, owner, org, "cher.fr").json()["id"])

    assert op["status"] == "failed"
    assert op["error"]["code"] == "insufficient_funds"
    assert "top up" in op["error"]["message"]
    assert api.get(f"/v1/organizations/{org}/products", headers=owner.auth).json()["items"] == []
    assert balance(api, owner, org) == 1000
    assert charges_for(org) == []


def test_invoice_payment_is_a_postpaid_ledger_line(api, workers):
    workers()
    owner = builders.person(api)
    org = builders.organization(api, owner)
    builders.credit_limit(api, org, 1500)

    op = wait_done(api, owner, buy(api, owner, org, "facture.fr", payment_method="invoice").json()["id"])

    assert op["status"] == "succeeded"
    assert balance(api, owner, org) == 0
    assert charges_for(org) == [1500]
    assert api.get(f"/v1/organizations/{org}/billing", headers=owner.auth).json()["owed"] == {
        "amount": 1500,
        "currency": "EUR",
    }


def test_a_domain_name_is_held_by_one_product_at_a_time(api, workers):
    workers()
    owner, org = builders.funded(api, 10_000)
    bought(api, owner, org, "unique.fr")

    again = buy(api, owner, org, "UNIQUE.fr")

    assert again.status_code == 409
    assert again.json()["error"]["code"] == "name_taken"


def test_invalid_domain_names_are_refused_with_what_to_fix(api):
    owner = builders.person(api)
    org = builders.organization(api, owner)

    answer = buy(api, owner, org, "no_tld")

    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid_name"
