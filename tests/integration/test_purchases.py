"""Purchases end to end: API -> operation row -> Redis -> Dramatiq worker -> tables."""

from __future__ import annotations

from tests.api import builders
from tests.integration.flows import balance, buy, charges_for, ledger_sums, wait_done


def test_purchase_creates_the_product_and_charges_the_prepaid_balance(api, workers):
    workers()
    owner, org = builders.funded(api, 10_000)

    answer = buy(api, owner, org, "exemple.fr", years=2)

    assert answer.status_code == 202
    assert answer.json()["status"] in {"pending", "running", "succeeded"}
    op = wait_done(api, owner, answer.json()["id"])
    assert op["status"] == "succeeded", op
    product = api.get(f"/v1/products/{op['result']['product_id']}", headers=owner.auth).json()
    assert (product["name"], product["kind"], product["organization_id"]) == ("exemple.fr", "domain", org)
    assert product["client_id"] is None and product["state"] == "active"
    assert balance(api, owner, org) == 10_000 - 2 * 1500
    assert charges_for(org) == [3000]
    assert ledger_sums() == {"EUR": 0}
