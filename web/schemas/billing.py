"""Billing: adding funds, the summary and its settings, settlements, transactions, and the
currencies an organization may be billed in."""

from __future__ import annotations

import enum
from datetime import datetime

from msgspec import Struct

from rules.price_list import CURRENCIES
from web.schemas.common import Ident, MoneyIn, MoneyIO

# The currencies with a price list (rules/price_list.toml): what an organization may be billed in.
PriceListCurrency = enum.StrEnum("PriceListCurrency", {code: code for code in sorted(CURRENCIES)})  # type: ignore[misc]


class FundsIn(Struct, forbid_unknown_fields=True):
    amount: MoneyIn


class FundsOut(Struct):
    operation_id: str
    amount: MoneyIO
    balance: MoneyIO


class ForecastOut(Struct):
    amount: int
    currency: str
    products: int


class BillingOut(Struct):
    balance: MoneyIO
    volume_12m: MoneyIO
    tier: str
    discount_percent: int
    next_tier_at: MoneyIO | None
    tier_computed_at: datetime
    owed: MoneyIO  # invoice charges not yet settled
    credit_limit: MoneyIO  # owed may not go above it (set by ops)
    low_balance_threshold: MoneyIO
    autorenew_forecast: ForecastOut  # autorenewals due in the next 31 days, at the current tier
    below_low_balance: bool


class BillingPatch(Struct, forbid_unknown_fields=True):
    low_balance_threshold: MoneyIn


class CreditLimitIn(Struct, forbid_unknown_fields=True):
    credit_limit: MoneyIn


class SettlementIn(Struct, forbid_unknown_fields=True):
    amount: MoneyIn
    reference: Ident | None = None  # the payment's reference in the accounting system


class SettlementOut(Struct):
    operation_id: str
    amount: MoneyIO
    owed: MoneyIO


class TransactionOut(Struct):
    id: str
    created_at: datetime
    kind: str  # topup, purchase, renewal, restore_fee, settlement
    book: str  # prepaid or invoice
    amount: MoneyIO  # signed: what the line moved in its book
    balance: MoneyIO  # prepaid balance after the line
    owed: MoneyIO  # owed after the line
    operation_id: str | None
    product_id: str | None
    product_kind: str | None
    client_id: str | None


class TransactionPage(Struct):
    items: list[TransactionOut]
    next_cursor: str | None
