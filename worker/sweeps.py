"""Scheduler jobs that find due products and send their ids to the lifecycle actors.

Sandbox organizations are never swept here: their test clocks run the same actors
(worker.actors.test_clocks). Each run leases what it takes with a conditional UPDATE (the product's next_*_at is
pushed `LEASE` ahead), so two scheduler replicas never send the same product in one
tick; if a message is lost or a worker dies, the lease runs out and a later tick
sends it again. The actors set the real next time when they are done.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import structlog

from runtime.clock import clock
from tables import sweeps, tier_states
from tables.engine import transaction
from worker.queue import AUTORENEW_ACTOR, REMINDER_ACTOR, STATE_ACTOR, Sender, lifecycle_message, tier_message

log = structlog.get_logger("tenure.sweeps")
LEASE = timedelta(minutes=15)
MESSAGE_BATCH = 100
MAX_PER_RUN = 100_000

# job id -> (product column, actor)
PRODUCT_SWEEPS = {
    "states": ("next_state_at", STATE_ACTOR),
    "reminders": ("next_reminder_at", REMINDER_ACTOR),
    "autorenew": ("next_autorenew_at", AUTORENEW_ACTOR),
}


async def sweep(job: str, sender: Sender) -> int:
    """Leases the due products of one sweep and sends them in batches; returns how many."""
    from tables import due_products

    column, actor = PRODUCT_SWEEPS[job]
    started, now = time.monotonic(), clock.now()
    async with transaction():
        due = await due_products.lease_due(column, now, now + LEASE, MAX_PER_RUN)
    for start in range(0, len(due), MESSAGE_BATCH):
        batch = due[start : start + MESSAGE_BATCH]
        if not await asyncio.to_thread(sender.send, lifecycle_message(actor, batch)):
            break  # broker down: the leases run out and a later run sends them again
    await _record(job, now, started, len(due))
    return len(due)


async def recalculate_tiers(sender: Sender) -> int:
    """Daily: every payer with volume gets its tier recomputed (old purchases age out).

    Payers are flagged with the same conditional UPDATE that coalesces charges, so a
    second scheduler replica running the job finds them flagged and sends nothing.
    """
    started, now = time.monotonic(), clock.now()
    async with transaction():
        flagged = await tier_states.flag_daily_tier_runs(now)
    for org_id in flagged:
        if not await asyncio.to_thread(sender.send, tier_message(org_id)):
            break  # the relay re-sends flags older than its stall time
    await _record("tiers", now, started, len(flagged))
    return len(flagged)


RUN_HISTORY = timedelta(days=14)


async def forget_old_runs() -> int:
    """Daily: the record of scheduler runs keeps two weeks (the ops page shows the last ones)."""
    async with transaction():
        return await sweeps.forget_before(clock.now() - RUN_HISTORY)


async def _record(job: str, now, started: float, items: int) -> None:
    duration_ms = int((time.monotonic() - started) * 1000)
    async with transaction():
        await sweeps.record(job, now, duration_ms, items)
    if items:
        log.info("sweep_run", job=job, items=items, duration_ms=duration_ms)


async def run_all(sender: Sender) -> dict[str, int]:
    """One tick of every product sweep (states first: an expired product gets no attempt)."""
    return {job: await sweep(job, sender) for job in PRODUCT_SWEEPS}
