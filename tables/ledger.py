"""Double-entry ledger, prepaid balances (for atomic checks) and tier state."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgspec
from piccolo.columns import BigInt, Boolean, Timestamptz, Varchar
from piccolo.columns.combination import WhereRaw
from piccolo.query.functions.aggregate import Sum
from piccolo.table import Table

from rules import pricing
from rules.catalog import Kind
from rules.ledger import OWN_BOOKS, Book, EntryKind
from rules.money import DEFAULT_CURRENCY, Money
from runtime.ids import new_id
from tables.references import ORGANIZATION, reference
from tables.statements import Statement, fetch
from tables.tier_states import TierState, tier_state


class LedgerEntry(Table, tablename="ledger_entries"):
    id = Varchar(length=40, primary_key=True)
    txn_id = Varchar(length=60, index=True, help_text="Entries of one transaction sum to zero.")
    book = Varchar(length=20, choices=Book, help_text="prepaid, invoice, revenue or cash (rules.ledger.Book)")
    organization_id = reference(
        ORGANIZATION, null=True, help_text="Whose book it is; null for the house's revenue and cash."
    )
    amount = BigInt(help_text="Signed, in minor units.")
    currency = Varchar(length=3)
    operation_id = Varchar(
        length=40, null=True, default=None, help_text="The operation that booked it; null for one booked by ops."
    )
    created_at = Timestamptz(index=True)
    kind = Varchar(
        length=20,
        default="",
        choices=EntryKind,
        help_text="topup, purchase, renewal, restore_fee, settlement, charge (rules.ledger.EntryKind)",
    )
    product_id = Varchar(length=40, null=True, default=None, help_text="The product charged for; null for a top-up.")
    product_kind = Varchar(
        length=20, null=True, default=None, choices=Kind, help_text="domain, mailbox, ... (rules.catalog.Kind)"
    )
    client_id = Varchar(
        length=40,
        null=True,
        default=None,
        help_text="The reseller's client whose product it was (statements per client).",
    )


class Balance(Table, tablename="balances"):
    """An organization's billing account: prepaid balance and what it owes, kept equal to the
    sums of its prepaid and invoice entries, with its billing settings. Charges already lock
    this row, so the credit check and the low-balance crossing are decided under that lock."""

    organization_id = reference(ORGANIZATION, primary_key=True, help_text="The organization billed.")
    prepaid = BigInt(default=0, help_text="Prepaid balance in minor units (the sum of its prepaid entries).")
    currency = Varchar(length=3, default="EUR")
    owed = BigInt(default=0, help_text="Invoice charges not yet settled (minus the invoice entries).")
    credit_limit = BigInt(default=0, help_text="Owed may not go above this (set by ops).")
    low_balance_threshold = BigInt(
        default=0, help_text="billing.low_balance is sent when prepaid drops below it; 0: never."
    )
    below_low_balance = Boolean(default=False, help_text="billing.low_balance was sent for this dip.")


class BalanceRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An organization's balance row as the other layers read it (msgspec.convert, in C: a
    batch's charges read it once per payer). Money in minor units of `currency`."""

    organization_id: str
    prepaid: int
    currency: str
    owed: int
    credit_limit: int
    low_balance_threshold: int  # 0: never warned
    below_low_balance: bool  # billing.low_balance was sent for this dip


# --- queries -----------------------------------------------------------------


class Overdraft(Exception):
    """The prepaid balance changed under us and no longer covers the charge."""


class OverCredit(Exception):
    """What is owed would pass the credit limit (or go below zero): nothing was written."""


async def open_account(org_id: str, currency: str, now: datetime, *, credit_limit: int = 0) -> None:
    await Balance.insert(Balance(organization_id=org_id, prepaid=0, currency=currency, credit_limit=credit_limit))
    await TierState.insert(
        TierState(organization_id=org_id, tier="A", volume_12m=0, currency=currency, computed_at=now)
    )


def entry_rows(
    txn_id: str, entries: Iterable, now: datetime, operation_id: str | None = None, *, product: dict | None = None
) -> tuple[list[dict], dict[str, dict[str, int]]]:
    """One balanced transaction's lines as rows (not written) and the moves they make to the
    balance rows, by organization ({"prepaid": delta, "owed": delta})."""
    rows: list[dict] = []
    moves: dict[str, dict[str, int]] = {}
    about = product or {}
    # One id per transaction, numbered: its lines list in the order they were booked.
    base = new_id("led")
    for number, entry in enumerate(entries):
        rows.append(
            {
                "id": f"{base}{number:03d}",
                "txn_id": txn_id,
                "book": entry.book,
                "organization_id": entry.organization_id,
                "amount": entry.amount.amount,
                "currency": entry.amount.currency,
                "operation_id": operation_id,
                "created_at": now,
                "kind": entry.kind,
                "product_id": about.get("product_id"),
                "product_kind": about.get("product_kind"),
                "client_id": about.get("client_id"),
            }
        )
        if entry.book in OWN_BOOKS:
            deltas = moves.setdefault(entry.organization_id, {"prepaid": 0, "owed": 0})
            if entry.book == Book.PREPAID:
                deltas["prepaid"] += entry.amount.amount
            else:
                deltas["owed"] -= entry.amount.amount
    return rows, moves


async def post(
    txn_id: str,
    entries: Iterable,
    now: datetime,
    operation_id: str | None = None,
    *,
    product: dict | None = None,
    move_balances: bool = True,
) -> dict[str, Any]:
    """Writes one balanced transaction; prepaid entries move the balance row atomically.

    Call inside a transaction. A debit that would make a prepaid balance negative
    raises Overdraft (the conditional UPDATE matched nothing), so the caller rolls back.
    Answers the balance rows it moved, as they now are, by organization.

    `move_balances=False` writes the lines only and answers the moves they make instead, by
    organization ({"prepaid": delta, "owed": delta}), for the caller to `move` later in the
    same transaction (a batch moves each balance once, last)."""
    rows, moves = entry_rows(txn_id, entries, now, operation_id, product=product)
    await LedgerEntry.insert(*(LedgerEntry(**row) for row in rows))
    if not move_balances:
        return moves
    return {org_id: await move(org_id, **by) for org_id, by in moves.items()}


async def move(org_id: str, *, prepaid: int = 0, owed: int = 0) -> BalanceRecord:
    """Moves the balance row by `prepaid` and `owed` in one conditional UPDATE (its lock held from
    here to COMMIT): Overdraft if prepaid would go below zero, OverCredit if owed would leave
    [0, credit_limit] (a settlement never goes below, a charge never above); answers the row."""
    conditions = []
    if prepaid < 0:
        conditions.append(WhereRaw("prepaid + {} >= 0", prepaid))
    if owed > 0:
        conditions.append(WhereRaw("owed + {} <= credit_limit", owed))
    elif owed < 0:
        conditions.append(WhereRaw("owed + {} >= 0", owed))
    moved = (
        await Balance.update({Balance.prepaid: Balance.prepaid + prepaid, Balance.owed: Balance.owed + owed})
        .where(Balance.organization_id == org_id, *conditions)
        .returning(*Balance._meta.columns)
    )
    if moved:
        return msgspec.convert(moved[0], BalanceRecord)
    if owed and not prepaid:
        raise OverCredit(org_id)
    row = await account(org_id)
    if row is not None and owed and row.prepaid + prepaid >= 0:
        raise OverCredit(org_id)
    raise Overdraft(org_id)


async def prepaid_balance(org_id: str) -> tuple[int, str]:
    row = await Balance.select(Balance.prepaid, Balance.currency).where(Balance.organization_id == org_id).first()
    return (row["prepaid"], row["currency"]) if row else (0, DEFAULT_CURRENCY)


_ACCOUNT = Statement("SELECT * FROM balances WHERE organization_id = {}")  # once per batch and payer


async def account(org_id: str) -> BalanceRecord | None:
    """The organization's billing row: prepaid, owed, currency, credit limit, threshold, state."""
    rows = await fetch(_ACCOUNT, org_id)
    return msgspec.convert(rows[0], BalanceRecord) if rows else None


async def account_of(org_id: str) -> BalanceRecord:
    """`account` of an organization, which always has one (opened with it): LookupError if not."""
    found = await account(org_id)
    if found is None:
        raise LookupError(f"organization {org_id} has no balance row")
    return found


async def set_credit_limit(org_id: str, limit: int) -> bool:
    updated = (
        await Balance.update({Balance.credit_limit: limit})
        .where(Balance.organization_id == org_id)
        .returning(Balance.organization_id)
    )
    return bool(updated)


async def set_low_balance_threshold(org_id: str, threshold: int) -> None:
    await Balance.update({Balance.low_balance_threshold: threshold}).where(Balance.organization_id == org_id)


async def mark_below(org_id: str, below: bool) -> bool:
    """Records the low-balance state; True only for the call that changed it (one event per dip)."""
    changed = (
        await Balance.update({Balance.below_low_balance: below})
        .where((Balance.organization_id == org_id) & (Balance.below_low_balance == (not below)))
        .returning(Balance.organization_id)
    )
    return bool(changed)


async def revenue_since(payer_id: str, since: datetime) -> int:
    row = (
        await LedgerEntry.select(Sum(LedgerEntry.amount, alias="total"))
        .where(
            (LedgerEntry.organization_id == payer_id)
            & (LedgerEntry.book == Book.REVENUE)
            & (LedgerEntry.created_at > since)
        )
        .first()
    )
    return int(row["total"] or 0) if row else 0


async def oldest_revenue_since(payer_id: str, since: datetime) -> datetime | None:
    """When the oldest charge that `revenue_since(payer_id, since)` counts was made."""
    row = (
        await LedgerEntry.select(LedgerEntry.created_at)
        .where(
            (LedgerEntry.organization_id == payer_id)
            & (LedgerEntry.book == Book.REVENUE)
            & (LedgerEntry.created_at > since)
        )
        .order_by(LedgerEntry.created_at)
        .first()
    )
    return row["created_at"] if row else None


async def current_tier(payer_id: str) -> pricing.Tier:
    """The tier in force for the payer's prices (kept by tiers.recalculate): the one source for
    the actors that charge and the dry runs that quote."""
    state = await tier_state(payer_id)
    volume = Money(state["volume_12m"], state["currency"]) if state else Money.zero()
    return pricing.tier_for(volume)


async def currency_of(org_id: str) -> str:
    row = await Balance.select(Balance.currency).where(Balance.organization_id == org_id).first()
    return row["currency"] if row else DEFAULT_CURRENCY
