"""tiers.recalculate: the payer's 12-month volume and tier, from the ledger."""

from __future__ import annotations

from datetime import datetime

from rules import pricing
from rules.lifecycle import add_years
from rules.money import Money
from tables import billing, events, ledger, test_clocks, tier_states
from tables import event_payloads as payloads
from tables.engine import transaction


async def recalculate(organization_id: str, now: datetime | None = None) -> bool:
    """Recomputes the tier as of `now` (default: the organization's time, a sandbox's test clock
    or the wall clock), recording tier.changed when it moved, and, as prices and the autorenewals
    due move with it and with time, the low-balance state (billing.low_balance when the balance
    went below): True if an event was recorded (the caller fans it out)."""
    now = now or await test_clocks.now_for(organization_id)
    async with transaction():
        state = await tier_states.lock_tier(organization_id)  # first: charges committing meanwhile re-flag
        if state is None:
            return False
        volume = Money(await ledger.revenue_since(organization_id, add_years(now, -1)), state["currency"])
        tier = pricing.tier_for(volume)
        previous = await tier_states.save_tier(organization_id, tier.name, volume.amount, now)
        if previous is not None:
            await events.record(
                "tier.changed",
                organization_id,
                now,
                data=payloads.TierChanged(
                    from_tier=previous,
                    to_tier=tier.name,
                    discount_percent=tier.discount_percent,
                    volume_12m=payloads.money(volume.to_dict()),
                ),
            )
        warned = await billing.check_low_balance(organization_id, now)
        return previous is not None or warned
