"""tiers.recalculate: the payer's 12-month volume and tier, from the ledger."""

from __future__ import annotations

from rules import pricing
from rules.lifecycle import add_years
from rules.money import Money
from tables import events, ledger
from tables import event_payloads as payloads
from tables.clock import clock
from tables.engine import transaction


async def recalculate(organization_id: str) -> str | None:
    """Recomputes the tier; records tier.changed and returns the new tier when it moved."""
    now = clock.now()
    async with transaction():
        state = await ledger.lock_tier(organization_id)  # first: charges committing meanwhile re-flag
        if state is None:
            return None
        volume = Money(await ledger.revenue_since(organization_id, add_years(now, -1)), state["currency"])
        tier = pricing.tier_for(volume)
        previous = await ledger.save_tier(organization_id, tier.name, volume.amount, now)
        if previous is None:
            return None
        await events.record("tier.changed", organization_id, now, data=payloads.TierChanged(
            from_tier=previous, to_tier=tier.name, discount_percent=tier.discount_percent,
            volume_12m=payloads.money(volume.to_dict())))
        return tier.name
