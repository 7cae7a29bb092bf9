"""Tier states: each payer's price tier, the volume it was computed from, and the flag that
queues its recalculation (a burst of charges queues one)."""

from datetime import datetime

from piccolo.columns import BigInt, Timestamptz, Varchar
from piccolo.table import Table

from tables.engine import is_sqlite, locked
from tables.references import ORGANIZATION, reference
from tables.statements import Statement, fetch


class TierState(Table, tablename="tier_states"):
    organization_id = reference(ORGANIZATION, primary_key=True, help_text="The payer priced.")
    tier = Varchar(length=1, default="A", help_text="Price tier (rules.pricing), from the last 12 months' volume.")
    volume_12m = BigInt(
        default=0, help_text="Charges of the last 12 months, in minor units, when the tier was computed."
    )
    currency = Varchar(length=3, default="EUR")
    computed_at = Timestamptz()
    recalc_requested_at = Timestamptz(
        null=True,
        default=None,
        help_text="Set when a recalculation is queued; bursts of charges queue one.",
    )


_TIER_STATE = Statement("SELECT * FROM tier_states WHERE organization_id = {}")  # once per batch and payer


async def tier_state(org_id: str) -> dict | None:
    rows = await fetch(_TIER_STATE, org_id)
    return rows[0] if rows else None


async def save_tier(org_id: str, tier: str, volume: int, now: datetime) -> str | None:
    """Stores the recomputed tier and clears the request flag; returns the previous tier if it changed."""
    before = await lock_tier(org_id)
    await TierState.update(
        {
            TierState.tier: tier,
            TierState.volume_12m: volume,
            TierState.computed_at: now,
            TierState.recalc_requested_at: None,
        }
    ).where(TierState.organization_id == org_id)
    if before and before["tier"] != tier:
        return before["tier"]
    return None


# The row locked even when it is already flagged (see `flag_tier_recalc`), in one round trip.
_FLAG_LOCKED = Statement(
    """
WITH before AS (
    SELECT organization_id, recalc_requested_at FROM tier_states WHERE organization_id = {} FOR UPDATE
)
UPDATE tier_states AS t SET recalc_requested_at = COALESCE(before.recalc_requested_at, {})
FROM before WHERE t.organization_id = before.organization_id
RETURNING before.recalc_requested_at IS NULL AS flagged
"""
)


async def flag_tier_recalc(org_id: str, now: datetime) -> bool:
    """Marks the payer's tier for recalculation; True if it was not already marked (send a message).

    The tier row stays locked by the charge's transaction until it commits, marked before or
    not: a recalculation (which locks it first) then waits for the charge and counts it. Were
    an already-marked row left unlocked, a recalculation started meanwhile would read the
    volume without the charge, clear the mark, and the charge would commit unseen until the
    next one. (On SQLite a write transaction excludes the others: the plain update suffices.)"""
    if not is_sqlite():
        rows = await fetch(_FLAG_LOCKED, org_id, now)
        return bool(rows and rows[0]["flagged"])
    flagged = (
        await TierState.update({TierState.recalc_requested_at: now})
        .where((TierState.organization_id == org_id) & TierState.recalc_requested_at.is_null())
        .returning(TierState.organization_id)
    )
    return bool(flagged)


async def lock_tier(org_id: str) -> dict | None:
    return await locked(TierState.select().where(TierState.organization_id == org_id)).first()


async def flag_daily_tier_runs(now: datetime) -> list[str]:
    """Flags every production payer with volume (or above tier A) for recalculation, with the
    conditional UPDATE that coalesces charges (a second scheduler finds them flagged); answers
    the organizations flagged. Sandboxes' tiers age with their test clocks."""
    from tables import test_clocks

    flagged = (
        await TierState.update({TierState.recalc_requested_at: now})
        .where(
            ((TierState.volume_12m > 0) | (TierState.tier != "A")) & TierState.recalc_requested_at.is_null(),
            test_clocks.not_a_sandbox("organization_id"),
        )
        .returning(TierState.organization_id)
    )
    return [row["organization_id"] for row in flagged]


async def tiers_flagged_before(cutoff: datetime, limit: int) -> list[str]:
    rows = await TierState.select(TierState.organization_id).where(TierState.recalc_requested_at < cutoff).limit(limit)
    return [r["organization_id"] for r in rows]
