"""Operations as answered (to members and to ops), their pages, and what a dry run answers."""

from __future__ import annotations

from datetime import datetime

from msgspec import Struct

from web.schemas.common import MoneyIO


class ErrorOut(Struct):
    code: str
    message: str


class OperationOut(Struct):
    id: str
    kind: str
    status: str
    error: ErrorOut | None
    result: dict | None
    organization_id: str
    product_id: str | None
    created_at: datetime
    finished_at: datetime | None


class FailureOut(Struct):
    """Ops only: the last unexpected exception of an operation."""

    type: str | None
    message: str
    traceback: str | None
    attempts: int
    at: str | None = None


class OpsOperationOut(OperationOut):
    """Ops only: an operation with its attempts, reference and last unexpected exception."""

    attempts: int
    reference: str | None
    failure: FailureOut | None
    params: dict


class OperationPage(Struct, omit_defaults=True):
    items: list[OperationOut]
    next_cursor: str | None
    total: int | None = None


class QuoteOut(Struct):
    """What the operation would cost: `price` = `list_price` less `discount_percent`, plus
    `restore_fee`. Transfers and releases cost nothing (zero amounts, no payer)."""

    price: MoneyIO
    list_price: MoneyIO
    discount_percent: int
    tier: str
    restore_fee: MoneyIO
    new_expires_at: datetime | None
    payer: str | None
    payment_method: str | None


class DryRunOut(Struct):
    dry_run: bool
    quote: QuoteOut | None  # null when a check fails before the price is known
    would_fail: ErrorOut | None  # the error the real request would end with; null if none


class DryRunItemOut(Struct):
    product_id: str
    quote: QuoteOut | None
    would_fail: ErrorOut | None


class BatchDryRunOut(Struct):
    dry_run: bool
    quote: QuoteOut | None  # the total of the items that would renew
    would_fail: ErrorOut | None  # set when the whole batch would be refused (permissions)
    items: list[DryRunItemOut]  # every item, in the order sent
    failing_items: int
