"""The relay: sends whatever was accepted but never reached the broker, or stalled.

Runs on a short interval from the scheduler. Taking rows is a conditional UPDATE
(a lease), so several relays at once never send the same operation in one tick.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog

from tables import ledger, operations
from tables.clock import clock
from tables.engine import transaction
from worker.queue import Sender, operation_message, tier_message

log = structlog.get_logger("tenure.relay")
BATCH = 500


async def relay(sender: Sender, stall_seconds: int) -> int:
    """Sends one batch; returns how many messages reached the broker."""
    now = clock.now()
    cutoff = now - timedelta(seconds=stall_seconds)
    async with transaction():
        taken = await operations.take_for_relay(cutoff, now, BATCH)
    sent = 0
    for index, row in enumerate(taken):
        if not await asyncio.to_thread(sender.send, operation_message(row["kind"], row["id"])):
            async with transaction():  # broker down: the next tick takes them again at once
                for rest in taken[index:]:
                    await operations.unsent(rest["id"])
            break
        sent += 1
    for org_id in await ledger.tiers_flagged_before(cutoff, BATCH):
        await asyncio.to_thread(sender.send, tier_message(org_id))
    if taken:
        log.info("relay_sent", taken=len(taken), sent=sent)
    return sent
