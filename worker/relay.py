"""The relay: sends whatever was accepted but never reached the broker, or stalled.

Runs on a short interval from the scheduler. Taking rows is a conditional UPDATE
(a lease), so several relays at once never send the same operation in one tick.

What it sends again, and when:

- an operation whose send failed (`enqueued_at` NULL): at once;
- an operation sent (or started) more than `stall_seconds` ago and still unfinished: only
  if its message cannot still be waiting in the broker. The operations queue is FIFO, so
  every message sent after the oldest one still waiting is behind it: with a backlog, an
  operation is sent again only when it was last sent `stall_seconds` before the oldest
  waiting message was (its message was taken by a worker long ago and lost, or the
  broker dropped it). A backlog thus costs no duplicates, however long it takes to
  drain; with an empty queue (or a broker that cannot tell) the rule is the plain stall.
- an operation past its bounds (see `worker.execution.Bounds`) is not sent again: it ends
  as failed with `internal_error`, and its `operation.failed` event is fanned out.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import structlog

from runtime.clock import clock
from tables import operation_relay, tier_states
from tables.engine import transaction
from worker.execution import Bounds, give_up
from worker.monitoring import monitor_for
from worker.queue import OPERATIONS_QUEUE, Sender, operation_messages, operations_named, tier_message
from worker.webhooks.fanout import fan_out

log = structlog.get_logger("tenure.relay")
BATCH = 500


def _oldest_waiting(sender: Sender) -> datetime | None:
    """When the oldest message still waiting on the operations queue was sent; None if the
    queue is empty, the broker cannot tell, or cannot be reached."""
    try:
        sent_at = monitor_for(sender.broker).oldest_waiting(OPERATIONS_QUEUE)
    except Exception as exc:  # the broker is down: the sends below will say so
        log.warning("relay_queue_unreadable", error=str(exc))
        return None
    return None if sent_at is None else datetime.fromtimestamp(sent_at, UTC)


async def send_operations(sender: Sender, kind_and_ids: list[tuple[str, str]]) -> int:
    """Sends these operations' messages (`worker.queue.operation_messages`; on Redis in one
    pipeline) and marks those the broker refused unsent, for the relay's next tick. Answers how
    many operations were sent."""
    refused = await asyncio.to_thread(sender.send_many, operation_messages(kind_and_ids))
    unsent = [operation_id for message in refused for operation_id in operations_named(message)]
    if unsent:
        await operation_relay.unsent_many(unsent)
    return len(kind_and_ids) - len(unsent)


async def relay(sender: Sender, stall_seconds: int, bounds: Bounds | None = None) -> int:
    """Sends one batch (an operation's kind by `worker.queue.OPERATION_BATCH` a message); returns
    how many operations reached the broker."""
    bounds = bounds or Bounds()
    now = clock.now()
    stall = timedelta(seconds=stall_seconds)
    cutoff = now - stall
    oldest = await asyncio.to_thread(_oldest_waiting, sender)
    async with transaction():
        taken = await operation_relay.take_for_relay(
            cutoff,
            now,
            BATCH,
            resend_before=None if oldest is None else oldest - stall,
            max_attempts=bounds.max_attempts,
            created_before=bounds.created_before(now),
        )
    given_up = [row for row in taken if bounds.exhausted(row["attempts"], row["created_at"], now, row["kind"])]
    for row in given_up:
        if await give_up(row["id"], now):
            await fan_out(sender, operation_id=row["id"])
    sent = await send_operations(sender, [(row["kind"], row["id"]) for row in taken if row not in given_up])
    for org_id in await tier_states.tiers_flagged_before(cutoff, BATCH):
        await asyncio.to_thread(sender.send, tier_message(org_id))
    if taken:
        log.info("relay_sent", taken=len(taken), sent=sent, failed=len(given_up))
    return sent
