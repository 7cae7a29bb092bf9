"""Double-entry ledger, prepaid balances (for atomic checks) and tier state."""

from piccolo.columns import BigInt, Timestamptz, Varchar
from piccolo.table import Table


class LedgerEntry(Table, tablename="ledger_entries"):
    id = Varchar(length=40, primary_key=True)
    txn_id = Varchar(length=60, index=True, help_text="Entries of one transaction sum to zero.")
    book = Varchar(length=20, help_text="prepaid, invoice, revenue or cash")
    organization_id = Varchar(length=40, null=True, default=None, index=True)
    amount = BigInt(help_text="Signed, in minor units.")
    currency = Varchar(length=3)
    operation_id = Varchar(length=40, null=True, default=None)
    created_at = Timestamptz(index=True)


class Balance(Table, tablename="balances"):
    """Prepaid balance per organization, kept equal to the sum of its prepaid entries."""

    organization_id = Varchar(length=40, primary_key=True)
    prepaid = BigInt(default=0)
    currency = Varchar(length=3, default="EUR")


class TierState(Table, tablename="tier_states"):
    organization_id = Varchar(length=40, primary_key=True)
    tier = Varchar(length=1, default="A")
    volume_12m = BigInt(default=0)
    currency = Varchar(length=3, default="EUR")
    computed_at = Timestamptz()
    recalc_requested_at = Timestamptz(
        null=True, default=None,
        help_text="Set when a recalculation is queued; bursts of charges queue one.",
    )


# --- queries -----------------------------------------------------------------

from collections.abc import Iterable  # noqa: E402
from datetime import datetime  # noqa: E402

from piccolo.columns.combination import WhereRaw  # noqa: E402
from piccolo.query.functions.aggregate import Sum  # noqa: E402

from rules import pricing  # noqa: E402
from rules.money import Money  # noqa: E402
from tables.ids import new_id  # noqa: E402


class Overdraft(Exception):
    """The prepaid balance changed under us and no longer covers the charge."""


async def open_account(org_id: str, currency: str, now: datetime) -> None:
    await Balance.insert(Balance(organization_id=org_id, prepaid=0, currency=currency))
    await TierState.insert(TierState(organization_id=org_id, tier="A", volume_12m=0,
                                     currency=currency, computed_at=now))


async def post(txn_id: str, entries: Iterable, now: datetime, operation_id: str | None = None) -> None:
    """Writes one balanced transaction; prepaid entries move the balance row atomically.

    Call inside a transaction. A debit that would make a prepaid balance negative
    raises Overdraft (the conditional UPDATE matched nothing), so the caller rolls back.
    """
    rows, moves = [], []
    for entry in entries:
        rows.append(LedgerEntry(
            id=new_id("led"), txn_id=txn_id, book=entry.book, organization_id=entry.organization_id,
            amount=entry.amount.amount, currency=entry.amount.currency,
            operation_id=operation_id, created_at=now,
        ))
        if entry.book == "prepaid":
            moves.append((entry.organization_id, entry.amount.amount))
    await LedgerEntry.insert(*rows)
    # The balance rows last: their locks are held from here to COMMIT.
    for organization_id, delta in moves:
        moved = await Balance.update({Balance.prepaid: Balance.prepaid + delta}).where(
            (Balance.organization_id == organization_id) & WhereRaw("prepaid + {} >= 0", delta)
        ).returning(Balance.organization_id)
        if not moved:
            raise Overdraft(organization_id)


async def prepaid_balance(org_id: str) -> tuple[int, str]:
    row = await Balance.select(Balance.prepaid, Balance.currency).where(
        Balance.organization_id == org_id).first()
    return (row["prepaid"], row["currency"]) if row else (0, "EUR")


async def revenue_since(payer_id: str, since: datetime) -> int:
    row = await LedgerEntry.select(Sum(LedgerEntry.amount, alias="total")).where(
        (LedgerEntry.organization_id == payer_id) & (LedgerEntry.book == "revenue")
        & (LedgerEntry.created_at > since)
    ).first()
    return int(row["total"] or 0) if row else 0


async def oldest_revenue_since(payer_id: str, since: datetime) -> datetime | None:
    """When the oldest charge that `revenue_since(payer_id, since)` counts was made."""
    row = await LedgerEntry.select(LedgerEntry.created_at).where(
        (LedgerEntry.organization_id == payer_id) & (LedgerEntry.book == "revenue")
        & (LedgerEntry.created_at > since)
    ).order_by(LedgerEntry.created_at).first()
    return row["created_at"] if row else None


async def tier_state(org_id: str) -> dict | None:
    return await TierState.select().where(TierState.organization_id == org_id).first()


async def current_tier(payer_id: str) -> pricing.Tier:
    """The tier in force for the payer's prices (kept by tiers.recalculate): the one source for
    the actors that charge and the dry runs that quote."""
    state = await tier_state(payer_id)
    volume = Money(state["volume_12m"], state["currency"]) if state else Money.zero()
    return pricing.tier_for(volume)


async def save_tier(org_id: str, tier: str, volume: int, now: datetime) -> str | None:
    """Stores the recomputed tier and clears the request flag; returns the previous tier if it changed."""
    before = await lock_tier(org_id)
    await TierState.update({TierState.tier: tier, TierState.volume_12m: volume,
                            TierState.computed_at: now, TierState.recalc_requested_at: None}
                           ).where(TierState.organization_id == org_id)
    if before and before["tier"] != tier:
        return before["tier"]
    return None


async def flag_tier_recalc(org_id: str, now: datetime) -> bool:
    """Marks the payer's tier for recalculation; True if it was not already marked (send a message)."""
    flagged = await TierState.update({TierState.recalc_requested_at: now}).where(
        (TierState.organization_id == org_id) & TierState.recalc_requested_at.is_null()
    ).returning(TierState.organization_id)
    return bool(flagged)


async def lock_tier(org_id: str) -> dict | None:
    from tables.engine import is_sqlite

    query = TierState.select().where(TierState.organization_id == org_id)
    if not is_sqlite():
        query = query.lock_rows()
    return await query.first()


async def tiers_flagged_before(cutoff: datetime, limit: int) -> list[str]:
    rows = await TierState.select(TierState.organization_id).where(
        TierState.recalc_requested_at < cutoff).limit(limit)
    return [r["organization_id"] for r in rows]
