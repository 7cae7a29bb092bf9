from datetime import UTC, datetime, timedelta

import pytest

from rules import quotes
from rules.catalog import DEFAULT_CATALOG
from rules.errors import InsufficientFunds
from rules.lifecycle import add_years, purchase_quote, renewal_quote
from rules.money import Money
from rules.pricing import DEFAULT_TIERS

NOW = datetime(2027, 5, 1, 12, 0, tzinfo=UTC)
DOMAIN = DEFAULT_CATALOG["domain"]
TIER_C = DEFAULT_TIERS[2]


def test_a_renewal_in_redemption_costs_the_discounted_years_plus_the_restore_fee():
    expires = NOW - timedelta(days=40)
    quote = renewal_quote(DOMAIN, 3, TIER_C, expires, expires, NOW)

    priced = quotes.priced(DOMAIN, 3, TIER_C, quote, "org_a", "invoice")

    assert priced.list_price == Money.eur(4500)
    assert (priced.tier, priced.discount_percent) == ("C", 20)
    assert priced.restore_fee == Money.eur(8000)
    assert priced.price == Money.eur(3600 + 8000) == quote.total
    assert priced.new_expires_at == add_years(expires, 3)
    assert (priced.payer, priced.payment_method) == ("org_a", "invoice")


def test_paying_prepaid_spends_the_balance_and_refuses_what_it_cannot_cover():
    priced = quotes.priced(
        DOMAIN, 2, DEFAULT_TIERS[0], purchase_quote(DOMAIN, 2, DEFAULT_TIERS[0], NOW), "org_a", "prepaid"
    )

    assert quotes.spend(Money.eur(5000), priced) == Money.eur(2000)
    with pytest.raises(InsufficientFunds, match="top up at least 10.00 EUR"):
        quotes.spend(Money.eur(2000), priced)


def test_paying_by_invoice_leaves_the_prepaid_balance_alone():
    priced = quotes.priced(
        DOMAIN, 2, DEFAULT_TIERS[0], purchase_quote(DOMAIN, 2, DEFAULT_TIERS[0], NOW), "org_a", "invoice"
    )

    assert quotes.spend(Money.eur(0), priced) == Money.eur(0)


def test_a_total_adds_the_amounts_and_keeps_a_shared_payment_method_only():
    one = quotes.priced(DOMAIN, 1, TIER_C, purchase_quote(DOMAIN, 1, TIER_C, NOW), "org_a", "prepaid")
    two = quotes.priced(DOMAIN, 2, TIER_C, purchase_quote(DOMAIN, 2, TIER_C, NOW), "org_a", "prepaid")
    billed = quotes.priced(DOMAIN, 1, TIER_C, purchase_quote(DOMAIN, 1, TIER_C, NOW), "org_a", "invoice")

    same = quotes.total([one, two], TIER_C, "EUR", "org_a")
    mixed = quotes.total([one, billed], TIER_C, "EUR", "org_a")
    empty = quotes.total([], TIER_C, "EUR", "org_a")

    assert (same.price, same.list_price, same.payment_method) == (Money.eur(3600), Money.eur(4500), "prepaid")
    assert mixed.payment_method is None
    assert (empty.price, empty.new_expires_at) == (Money.eur(0), None)


def test_transfers_and_releases_are_free():
    free = quotes.free(TIER_C, "EUR", NOW)

    assert free.price == free.list_price == free.restore_fee == Money.eur(0)
    assert (free.payer, free.payment_method, free.new_expires_at) == (None, None, NOW)
