"""A dry run quotes what the real request then charges: same tier, same lifecycle price, same expiry.

Volume tiers are reached with real purchases (as in test_tiers.py) and lifecycle states by
moving the injectable clock (as in test_lifecycle.py); workers run the real operations.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from rules.lifecycle import add_years
from runtime.clock import clock
from tables.ledger import LedgerEntry
from tests.api import builders
from tests.integration.flows import buy, db, renew, wait_all, wait_done

T0 = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)
YEARS = range(1, 11)
# Where the clock stands against the products' expiry (grace lasts 30 days, then 30 of redemption).
STATES = {"active": timedelta(days=-30), "grace": timedelta(days=10), "redemption": timedelta(days=40)}
TIER_VOLUME_ROUND = 5  # hosting for 10 years: 600.00 EUR each; B from 2,500.00 EUR of volume, C from 10,000.00
DRY = {"Dry-Run": "1"}


def reach_tier(api, owner, org, tier: str) -> None:
    """Buys rounds of 10-year hostings until the payer's tier is `tier` (never past it: D needs 50,000 EUR)."""
    for round_ in range(8):
        deadline = time.monotonic() + (3.0 if round_ else 0.0)  # tiers.recalculate runs just after charges
        while True:
            billing = api.get(f"/v1/organizations/{org}/billing", headers=owner.auth).json()
            if billing["tier"] == tier:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        ops = wait_all(
            api,
            owner,
            [
                buy(api, owner, org, f"site{round_}-{i}", kind="hosting", years=10).json()["id"]
                for i in range(TIER_VOLUME_ROUND)
            ],
        )
        assert {op["status"] for op in ops} == {"succeeded"}, ops
    raise AssertionError(f"never reached tier {tier}: {billing}")


def charged(op_id: str) -> list[int]:
    rows = db(
        LedgerEntry.select(LedgerEntry.amount)
        .where((LedgerEntry.operation_id == op_id) & (LedgerEntry.book == "revenue"))
        .run()
    )
    return [row["amount"] for row in rows]


def assert_charged_as_quoted(dry: dict, op: dict) -> None:
    """The dry run's outcome is the operation's: the same error, or the same price and expiry."""
    if dry["would_fail"] is not None:
        assert op["status"] == "failed", (dry, op)
        assert op["error"]["code"] == dry["would_fail"]["code"], (dry, op)
        assert charged(op["id"]) == []
        return
    assert op["status"] == "succeeded", (dry, op)
    quote = dry["quote"]
    assert op["result"]["price"] == quote["price"], (dry, op)
    fee = op["result"].get("restore_fee", {"amount": 0})["amount"]
    # A restore fee is a ledger line of its own, beside the renewal's price.
    parts = [part for part in (quote["price"]["amount"] - fee, fee) if part] or [0]
    assert sorted(charged(op["id"])) == sorted(parts)
    assert op["result"]["expires_at"] == quote["new_expires_at"]
    if "restore_fee" in op["result"]:
        assert op["result"]["restore_fee"] == quote["restore_fee"]


@pytest.mark.parametrize("tier", ["A", "B", "C"])
@pytest.mark.parametrize("state", list(STATES))
def test_a_dry_run_renewal_quotes_what_the_renewal_charges(api, workers, tier, state):
    workers()
    clock.pin(T0)
    owner, org = builders.funded(api, 3_000_000)
    bought = wait_all(api, owner, [buy(api, owner, org, f"{state}{years}.fr").json()["id"] for years in YEARS])
    products = [api.get(f"/v1/products/{op['result']['product_id']}", headers=owner.auth).json() for op in bought]
    clock.pin(add_years(T0, 1) + STATES[state])
    reach_tier(api, owner, org, tier)

    dry = []
    for product, years in zip(products, YEARS, strict=True):
        answer = api.post(
            f"/v1/products/{product['id']}/renewals",
            headers={**owner.auth, **DRY},
            json={"years": years, "current_expires_at": product["expires_at"], "payment_method": "prepaid"},
        )
        assert answer.status_code == 200, answer.text
        dry.append(answer.json())
    ops = wait_all(
        api,
        owner,
        [renew(api, owner, product, years=years).json()["id"] for product, years in zip(products, YEARS, strict=True)],
    )

    for quote in (d["quote"] for d in dry if d["quote"]):
        assert (quote["tier"], quote["payer"], quote["payment_method"]) == (tier, org, "prepaid")
        assert quote["restore_fee"]["amount"] == (8000 if state == "redemption" else 0)
    for answer, op in zip(dry, ops, strict=True):
        assert_charged_as_quoted(answer, op)
    expected_failures = ["invalid_term"] if state == "active" else []  # 10 more years is too far ahead
    assert [d["would_fail"]["code"] for d in dry if d["would_fail"]] == expected_failures


@pytest.mark.parametrize("tier", ["A", "B", "C"])
def test_a_dry_run_purchase_quotes_what_the_purchase_charges(api, workers, tier):
    workers()
    clock.pin(T0)
    owner, org = builders.funded(api, 3_000_000)
    reach_tier(api, owner, org, tier)
    bodies = [
        {"kind": "mailbox", "name": f"box{years}@quote.test", "years": years, "payment_method": "prepaid"}
        for years in YEARS
    ]

    dry = [
        api.post(f"/v1/organizations/{org}/purchases", json=body, headers={**owner.auth, **DRY}).json()
        for body in bodies
    ]
    ops = wait_all(
        api,
        owner,
        [api.post(f"/v1/organizations/{org}/purchases", json=body, headers=owner.auth).json()["id"] for body in bodies],
    )

    for answer, op, years in zip(dry, ops, YEARS, strict=True):
        assert answer["quote"]["list_price"]["amount"] == 2400 * years
        assert answer["quote"]["tier"] == tier
        assert_charged_as_quoted(answer, op)


def test_a_dry_run_renewal_checks_the_guard_funds_and_lifecycle(api, workers):
    workers()
    owner, org = builders.funded(api, 2_000)
    builders.credit_limit(api, org, 1500)
    op = wait_done(api, owner, buy(api, owner, org, "checks.fr").json()["id"])
    product = api.get(f"/v1/products/{op['result']['product_id']}", headers=owner.auth).json()
    url = f"/v1/products/{product['id']}/renewals"

    def dry(**body) -> dict:
        answer = api.post(
            url,
            headers={**owner.auth, **DRY},
            json={"years": 1, "current_expires_at": product["expires_at"], "payment_method": "prepaid", **body},
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    stale = dry(current_expires_at="2030-01-01T00:00:00Z")
    poor = dry()  # 5.00 EUR left after the purchase
    invoiced = dry(payment_method="invoice")
    clock.pin(datetime.fromisoformat(product["expires_at"]) + timedelta(days=62))  # pending delete
    gone = dry(payment_method="invoice")

    assert (stale["would_fail"]["code"], stale["quote"]) == ("expiry_mismatch", None)
    assert poor["would_fail"]["code"] == "insufficient_funds"
    assert poor["quote"]["price"] == {"amount": 1500, "currency": "EUR"}
    assert invoiced["would_fail"] is None
    assert gone["would_fail"]["code"] == "not_renewable"
    assert api.get(f"/v1/products/{product['id']}", headers=owner.auth).json()["expires_at"] == product["expires_at"]


def test_a_dry_run_purchase_of_a_held_name_would_fail(api, workers):
    workers()
    owner, org = builders.funded(api, 10_000)
    assert wait_done(api, owner, buy(api, owner, org, "held.fr").json()["id"])["status"] == "succeeded"

    answer = api.post(
        f"/v1/organizations/{org}/purchases",
        headers={**owner.auth, **DRY},
        json={"kind": "domain", "name": "HELD.fr", "years": 1, "payment_method": "prepaid"},
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["would_fail"]["code"] == "name_taken"


def test_a_dry_run_transfer_keeps_the_product_where_it_is(api, workers):
    workers()
    owner = builders.person(api)
    reseller = builders.organization(api, owner, reseller=True)
    builders.fund(api, owner, reseller, 10_000)
    client_id = builders.client_of(api, owner, reseller)
    other_owner = builders.person(api, "Eve")
    other = builders.organization(api, other_owner, reseller=True)
    theirs = builders.client_of(api, other_owner, other)
    op = wait_done(api, owner, buy(api, owner, reseller, "moving.fr").json()["id"])
    product = api.get(f"/v1/products/{op['result']['product_id']}", headers=owner.auth).json()
    url = f"/v1/products/{product['id']}/transfers"

    answer = api.post(url, json={"to_client": client_id}, headers={**owner.auth, **DRY})
    foreign = api.post(url, json={"to_client": theirs}, headers={**owner.auth, **DRY})
    outsider = api.post(url, json={"to_client": None}, headers={**other_owner.auth, **DRY})

    assert answer.status_code == 200, answer.text
    quote = answer.json()["quote"]
    assert answer.json()["would_fail"] is None
    assert (quote["price"]["amount"], quote["payer"], quote["new_expires_at"]) == (0, None, product["expires_at"])
    assert api.get(f"/v1/products/{product['id']}", headers=owner.auth).json()["client_id"] is None
    builders.refused(foreign, 404, "not_found")
    builders.refused(outsider, 404, "not_found")


def test_a_dry_run_renewal_of_another_organizations_product_is_not_found(api, workers):
    workers()
    owner, org = builders.funded(api, 10_000)
    outsider, _ = builders.funded(api, 10_000)
    viewer = builders.member(api, owner, org, ["product:view", "pay:prepaid"])
    op = wait_done(api, owner, buy(api, owner, org, "mine-only.fr").json()["id"])
    product = api.get(f"/v1/products/{op['result']['product_id']}", headers=owner.auth).json()
    body = {"years": 1, "current_expires_at": product["expires_at"], "payment_method": "prepaid"}
    url = f"/v1/products/{product['id']}/renewals"

    builders.refused(api.post(url, json=body, headers={**outsider.auth, **DRY}), 404, "not_found")
    builders.refused(
        api.post("/v1/products/prd_unknown/renewals", json=body, headers={**owner.auth, **DRY}), 404, "not_found"
    )
    builders.refused(api.post(url, json=body, headers=DRY), 401, "unauthorized")
    denied = api.post(url, json=body, headers={**viewer.auth, **DRY})
    assert denied.status_code == 200, denied.text
    assert (denied.json()["would_fail"]["code"], denied.json()["quote"]) == ("permission_denied", None)
