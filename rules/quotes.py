"""Quotes as a dry run shows them, built from the same lifecycle quotes the actors charge.

`price` is what the payer is charged: `list_price` (the yearly price times the years)
less the tier's `discount_percent`, plus the `restore_fee` of a product in redemption.
Transfers and releases cost nothing: their quote is zero and names no payer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from rules import ledger
from rules.catalog import ProductKind
from rules.lifecycle import Quote
from rules.money import Money
from rules.pricing import Tier


@dataclass(frozen=True)
class Priced:
    price: Money
    list_price: Money
    discount_percent: int
    tier: str
    restore_fee: Money
    new_expires_at: datetime | None
    payer: str | None
    payment_method: str | None


def priced(kind: ProductKind, years: int, tier: Tier, quote: Quote, payer: str, payment_method: str) -> Priced:
    """A purchase or renewal `quote` (lifecycle.purchase_quote / renewal_quote) as a dry run shows it."""
    return Priced(
        price=quote.total,
        list_price=kind.yearly_price * years,
        discount_percent=tier.discount_percent,
        tier=tier.name,
        restore_fee=quote.restore_fee,
        new_expires_at=quote.expires_at,
        payer=payer,
        payment_method=payment_method,
    )


def free(tier: Tier, currency: str, expires_at: datetime | None = None) -> Priced:
    """A transfer or a release: nothing charged, no expiry moved (a transfer keeps `expires_at`)."""
    zero = Money.zero(currency)
    return Priced(
        price=zero,
        list_price=zero,
        discount_percent=tier.discount_percent,
        tier=tier.name,
        restore_fee=zero,
        new_expires_at=expires_at,
        payer=None,
        payment_method=None,
    )


def total(items: Iterable[Priced], tier: Tier, currency: str, payer: str) -> Priced:
    """The sum of several quotes (a bulk renewal); one payment method if they share it, else None."""
    items = list(items)
    zero = Money.zero(currency)
    methods = {item.payment_method for item in items}
    return Priced(
        price=sum((i.price for i in items), zero),
        list_price=sum((i.list_price for i in items), zero),
        discount_percent=tier.discount_percent,
        tier=tier.name,
        restore_fee=sum((i.restore_fee for i in items), zero),
        new_expires_at=None,
        payer=payer,
        payment_method=methods.pop() if len(methods) == 1 else None,
    )


def spend(balance: Money, quote: Priced) -> Money:
    """The prepaid balance left once `quote` is paid; InsufficientFunds if it does not cover it.

    Paying by invoice leaves the prepaid balance as it is.
    """
    if quote.payment_method != ledger.PREPAID:
        return balance
    ledger.check_funds(balance, quote.price)
    return balance - quote.price
