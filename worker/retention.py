"""Daily retention job: forgets what is past its window, in small batches, one replica at a time.

Windows (settings, see deploy/README.md): idempotency keys (and the stored answers of POSTs
sent with one) 24 h, inbound webhook ids
7 days, finished operations 90 days, events and deliveries (with their attempts) 30 days
after their last attempt. The ledger, balances, products and the audit record are never
deleted.

The run holds a lease (tables/leases.py) so a second scheduler replica starting the same
job does nothing; each batch is its own short transaction that first extends the lease
(a run that lost it stops without committing anything more). The cutoffs are fixed at the
start, so a run ends even while new rows keep expiring. Order: attempts with their
deliveries, then events (once their deliveries are gone), inbound ids, idempotency keys,
stored answers, and operations last (once no event names them).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import structlog

from runtime.clock import clock
from runtime.ids import new_id
from runtime.settings import Settings
from tables import leases, retention, sweeps
from tables.engine import transaction

log = structlog.get_logger("tenure.retention")
JOB = "retention"
LEASE = timedelta(minutes=10)  # extended at every batch; a dead holder's runs out
# After each batch the job rests this many times as long as the batch took, so it takes no
# more than a third of the time of the database connection (and of its own process) it uses.
REST_RATIO = 2.0


# One batch of a table: (cutoff, limit, cursor) -> what it deleted and where the next starts.
Step = Callable[[datetime, int, retention.Cursor | None], Awaitable[retention.Batch]]


class LeaseLost(Exception):
    """Another replica took the job's lease (this one stalled past LEASE)."""


def steps(settings: Settings, now: datetime) -> list[tuple[Step, datetime]]:
    """Each step with its cutoff, in deletion order."""
    return [
        (retention.forget_deliveries, now - timedelta(days=settings.retention_webhooks_days)),
        (retention.forget_events, now - timedelta(days=settings.retention_webhooks_days)),
        (retention.forget_inbound_messages, now - timedelta(days=settings.retention_inbound_days)),
        (retention.forget_idempotency_keys, now - timedelta(hours=settings.retention_idempotency_hours)),
        (retention.forget_idempotent_responses, now - timedelta(hours=settings.retention_idempotency_hours)),
        (retention.forget_operations, now - timedelta(days=settings.retention_operations_days)),
    ]


async def run(settings: Settings) -> dict[str, int] | None:
    """One run: rows deleted (keys cleared) per table, or None if another replica holds the job."""
    now, started = clock.now(), time.monotonic()
    holder = new_id("ret")
    if not await leases.take(JOB, holder, now, now + LEASE):
        log.info("retention_skipped", reason="another scheduler holds the job")
        return None
    deleted = dict.fromkeys(retention.NAMES, 0)
    error = None
    try:
        async with transaction():
            await retention.start_counts()
        for step, cutoff in steps(settings, now):
            after = None
            while True:
                began = time.monotonic()
                async with transaction():
                    if not await leases.extend(JOB, holder, clock.now() + LEASE):
                        raise LeaseLost(JOB)
                    batch = await step(cutoff, settings.retention_batch_size, after)
                    await retention.count_deleted(batch.counts)
                for table, n in batch.counts.items():
                    deleted[table] += n
                if batch.after is None:
                    break
                after = batch.after
                await asyncio.sleep((time.monotonic() - began) * REST_RATIO)
    except LeaseLost:
        error = "lease lost to another scheduler"
        log.warning("retention_lease_lost", deleted=deleted)
    finally:
        await leases.release(JOB, holder, clock.now())
    duration_ms = int((time.monotonic() - started) * 1000)
    async with transaction():
        await sweeps.record(JOB, now, duration_ms, sum(deleted.values()), error)
    log.info("retention_run", duration_ms=duration_ms, **deleted)
    return deleted
