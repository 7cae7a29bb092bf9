"""Product kinds: prices and lifecycle periods, as data the catalog may change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rules.errors import UnknownCurrency, UnknownProductKind
from rules.money import DEFAULT_CURRENCY, Money
from rules.price_list import PRICE_LIST


class Kind(StrEnum):
    """The kinds of product sold: the values stored in `products.kind` and accepted by the API,
    each priced per currency by the price list (a unit test keeps the list's kinds these)."""

    DOMAIN = "domain"
    MAILBOX = "mailbox"
    HOSTING = "hosting"
    CERTIFICATE = "certificate"


@dataclass(frozen=True)
class ProductKind:
    """What a kind of product costs and how long each lifecycle period lasts."""

    kind: str
    yearly_price: Money
    restore_fee: Money
    grace_days: int = 30
    redemption_days: int = 30
    pending_delete_days: int = 5
    min_years: int = 1
    max_years: int = 10
    max_years_ahead: int = 10
    autorenew_days_before: tuple[int, ...] = (31, 15, 1)
    reminder_days_before: tuple[int, ...] = (30, 7, 1)

    def __post_init__(self) -> None:
        # A bad catalog is a deployment mistake: refuse it at load, not at renewal time.
        if self.yearly_price.currency != self.restore_fee.currency:
            raise ValueError(f"{self.kind}: yearly_price and restore_fee currencies differ")
        if self.yearly_price.is_negative() or self.restore_fee.is_negative():
            raise ValueError(f"{self.kind}: prices cannot be negative")
        periods = (self.grace_days, self.redemption_days, self.pending_delete_days)
        if min(periods) < 0:
            raise ValueError(f"{self.kind}: lifecycle periods cannot be negative")
        if not 1 <= self.min_years <= self.max_years <= self.max_years_ahead:
            raise ValueError(f"{self.kind}: need 1 <= min_years <= max_years <= max_years_ahead")
        if any(days < 1 for days in self.autorenew_days_before + self.reminder_days_before):
            raise ValueError(f"{self.kind}: days before expiry must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the catalog endpoint."""
        return {
            "kind": self.kind,
            "yearly_price": self.yearly_price.to_dict(),
            "restore_fee": self.restore_fee.to_dict(),
            "grace_days": self.grace_days,
            "redemption_days": self.redemption_days,
            "pending_delete_days": self.pending_delete_days,
            "min_years": self.min_years,
            "max_years": self.max_years,
            "max_years_ahead": self.max_years_ahead,
            "autorenew_days_before": list(self.autorenew_days_before),
            "reminder_days_before": list(self.reminder_days_before),
        }


def catalogs_from(price_list: Mapping[str, Any]) -> dict[str, dict[str, ProductKind]]:
    """Currency -> kind -> entry, from a parsed price list (rules.price_list)."""
    return {
        currency: {
            kind: ProductKind(kind, Money(prices["yearly_price"], currency), Money(prices["restore_fee"], currency))
            for kind, prices in entry["kinds"].items()
        }
        for currency, entry in price_list.items()
    }


CATALOGS: dict[str, dict[str, ProductKind]] = catalogs_from(PRICE_LIST)
DEFAULT_CATALOG: dict[str, ProductKind] = CATALOGS[DEFAULT_CURRENCY]


def catalog_for(currency: str) -> dict[str, ProductKind]:
    """The kinds priced in `currency`; UnknownCurrency naming the currencies sold."""
    try:
        return CATALOGS[currency]
    except (KeyError, TypeError):
        raise UnknownCurrency(
            f"no price list in {currency!r}; accepted currencies are: {', '.join(sorted(CATALOGS))}"
        ) from None


def kind_of(catalog: Mapping[str, ProductKind], kind: str) -> ProductKind:
    """The catalog entry for `kind`, or UnknownProductKind listing the valid ones."""
    try:
        return catalog[kind]
    except (KeyError, TypeError):
        raise UnknownProductKind(
            f"unknown product kind {kind!r}; valid kinds are: {', '.join(sorted(catalog))}"
        ) from None
