"""An organization's ledger lines (its prepaid and invoice books), for transactions and statements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from piccolo.query import Select
from piccolo.query.functions.aggregate import Sum

from rules.billing import Position
from rules.ledger import OWN_BOOKS
from tables import keyset
from tables.clients import Client
from tables.ledger import LedgerEntry

SORTS = {"created_at": LedgerEntry.created_at, "id": LedgerEntry.id}
COLUMNS = (
    LedgerEntry.id,
    LedgerEntry.created_at,
    LedgerEntry.kind,
    LedgerEntry.book,
    LedgerEntry.amount,
    LedgerEntry.currency,
    LedgerEntry.operation_id,
    LedgerEntry.product_id,
    LedgerEntry.product_kind,
    LedgerEntry.client_id,
)


def _own(org_id: str):
    return (LedgerEntry.organization_id == org_id) & LedgerEntry.book.is_in(list(OWN_BOOKS))


def lines(org_id: str, since: datetime | None, until: datetime | None) -> Select:
    """A fresh select of the organization's lines in [since, until)."""
    query = LedgerEntry.select(*COLUMNS).where(_own(org_id))
    if since is not None:
        query = query.where(LedgerEntry.created_at >= since)
    if until is not None:
        query = query.where(LedgerEntry.created_at < until)
    return query


async def _position(where) -> Position:
    rows = (
        await LedgerEntry.select(LedgerEntry.book, Sum(LedgerEntry.amount, alias="total"))
        .where(where)
        .group_by(LedgerEntry.book)
    )
    totals = {row["book"]: int(row["total"] or 0) for row in rows}
    return Position(balance=totals.get("prepaid", 0), owed=-totals.get("invoice", 0))


async def position_before_line(org_id: str, line: dict) -> Position:
    """Balance and owed from every line listed before `line` (by time, then id)."""
    at, line_id = line["created_at"], line["id"]
    return await _position(
        _own(org_id) & ((LedgerEntry.created_at < at) | ((LedgerEntry.created_at == at) & (LedgerEntry.id < line_id)))
    )


async def position_at(org_id: str, moment: datetime) -> Position:
    """Balance and owed from every line before `moment`."""
    return await _position(_own(org_id) & (LedgerEntry.created_at < moment))


async def page(
    org_id: str, since: datetime | None, until: datetime | None, order: keyset.Keyset, limit: int
) -> list[dict]:
    return await keyset.page(lambda: lines(org_id, since, until), order, limit)


def batches(
    org_id: str, since: datetime | None, until: datetime | None, order: keyset.Keyset
) -> AsyncIterator[list[dict]]:
    return keyset.batches(lambda: lines(org_id, since, until), order)


async def month_sums(org_id: str, start: datetime, end: datetime) -> list[dict]:
    """The month's lines summed per book, kind, product kind and client (what a statement shows)."""
    rows = (
        await LedgerEntry.select(
            LedgerEntry.book,
            LedgerEntry.kind,
            LedgerEntry.product_kind,
            LedgerEntry.client_id,
            Sum(LedgerEntry.amount, alias="amount"),
        )
        .where(_own(org_id) & (LedgerEntry.created_at >= start) & (LedgerEntry.created_at < end))
        .group_by(LedgerEntry.book, LedgerEntry.kind, LedgerEntry.product_kind, LedgerEntry.client_id)
    )
    return [{**row, "amount": int(row["amount"] or 0)} for row in rows]  # PostgreSQL sums are numeric


async def client_names(client_ids: list[str]) -> dict[str, str]:
    if not client_ids:
        return {}
    rows = await Client.select(Client.id, Client.name).where(Client.id.is_in(client_ids))
    return {row["id"]: row["name"] for row in rows}
