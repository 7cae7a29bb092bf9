"""Turns event rows into deliveries, one per matching enabled endpoint, then sends them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import structlog

from rules import webhooks as hooks
from runtime.clock import clock
from tables import deliveries, events, test_clocks
from tables.engine import transaction
from worker.monitoring import monitor_for
from worker.queue import WEBHOOKS_QUEUE, Sender, delivery_messages

log = structlog.get_logger("tenure.webhooks")
BATCH = 500
# A delivery whose message was sent this long before the oldest one still waiting on the
# webhooks queue was taken by a worker (prefetched, or lost with it): it may be sent again.
RESEND_MARGIN = timedelta(seconds=60)


async def fan_out_operations(sender: Sender, finished: dict[str, str]) -> int:
    """After operations finished (`finished`: operation id -> its organization's id): their
    events are fanned out where the organization has an enabled endpoint; elsewhere they are
    only marked dispatched, one statement for all, with no delivery transaction."""
    if not finished:
        return 0
    hooked = await deliveries.organizations_with_endpoints(sorted(set(finished.values())))
    bare = [op_id for op_id, org_id in finished.items() if org_id not in hooked]
    if bare:
        await events.mark_dispatched(bare, clock.now())
    wanted = [op_id for op_id, org_id in finished.items() if org_id in hooked]
    return await fan_out(sender, operation_ids=wanted) if wanted else 0


async def fan_out(
    sender: Sender,
    *,
    operation_id: str | None = None,
    organization_id: str | None = None,
    operation_ids: list[str] | None = None,
) -> int:
    """Claims undispatched events (all, or one operation's / organization's), creates their
    deliveries in the same transaction, and sends a deliver message for each after commit.
    A delivery whose message is lost is re-sent by the scheduler when its lease runs out."""
    now = clock.now()
    # A sandbox whose test clock is moving has its events delivered by the advance, in order.
    unfiltered = not (operation_id or organization_id or operation_ids)
    advancing = await test_clocks.advancing() if unfiltered else None
    async with transaction():
        claimed = await deliveries.claim_events(
            now,
            BATCH,
            operation_id=operation_id,
            organization_id=organization_id,
            operation_ids=operation_ids,
            not_of=advancing,
        )
        if not claimed:
            return 0
        endpoints = await deliveries.enabled_endpoints(sorted({e["organization_id"] for e in claimed}))
        pairs = [
            (hook["id"], event["id"])
            for event in claimed
            for hook in endpoints
            if hook["organization_id"] == event["organization_id"]
            and hooks.matches(frozenset(hook["event_types"]), event["type"])
        ]
        created = await deliveries.add_deliveries(pairs, now)
    await send(sender, created)  # broker down: the leases run out and the scheduler sends them
    return len(created)


async def send(sender: Sender, delivery_ids: list[str]) -> None:
    """Deliver messages for `delivery_ids`, DELIVERY_BATCH a message; stops at the first failure."""
    for message in delivery_messages(delivery_ids):
        if not await asyncio.to_thread(sender.send, message):
            break


def _oldest_waiting(sender: Sender) -> datetime | None:
    try:
        sent_at = monitor_for(sender.broker).oldest_waiting(WEBHOOKS_QUEUE)
    except Exception as exc:  # the broker is down: the sends will say so
        log.warning("webhooks_queue_unreadable", error=str(exc))
        return None
    return None if sent_at is None else datetime.fromtimestamp(sent_at, UTC)


async def send_due(sender: Sender) -> int:
    """Scheduler tick: deliveries due for an attempt (retries, lost messages) get a message.

    One whose message still waits in the queue (sent after the oldest waiting one, less
    RESEND_MARGIN) is not sent again, however long the backlog: see `deliveries.lease_due`."""
    oldest = await asyncio.to_thread(_oldest_waiting, sender)
    async with transaction():
        due = await deliveries.lease_due(
            clock.now(), BATCH, resend_before=None if oldest is None else oldest - RESEND_MARGIN
        )
    await send(sender, due)
    return len(due)
