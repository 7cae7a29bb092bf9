"""Retention: the queries that forget expired rows, one small batch at a time.

A batch is a range of the index on the column its window counts from: the rows after the
previous batch's last one (a keyset cursor), up to the `limit`-th of them, oldest first.
Reading only that range, the rows kept on purpose and the dead index entries of rows
just deleted are never read again, and every statement of the batch names the range
(no list of thousands of keys for the planner to scan a table against). The rows that
must stay are looked up by index among the batch's rows. Each batch runs in the caller's
transaction: the job (worker/retention.py) commits every one on its own, so no lock is
held for long.

Never deleted here: unfinished operations, pending deliveries, events not yet fanned out
or with deliveries left, operations an event still names; nor the ledger, balances,
products and the audit record.

The rows deleted are counted per table in `retention_counts` (in the batch's own
transaction), so every web replica's /metrics shows the same cluster-wide counters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from piccolo.columns import BigInt, Column, Varchar
from piccolo.table import Table

from tables.engine import locked
from tables.events import Event
from tables.idempotency import IdempotentResponse
from tables.inbound import InboundMessage
from tables.operations import FINISHED, Operation
from tables.webhooks import Delivery, DeliveryAttempt, DeliveryStatus

FINISHED_OPERATIONS = list(FINISHED)
# What /metrics reports, by name: the tables, and the idempotency keys (cleared, not deleted).
NAMES = (
    "delivery_attempts",
    "deliveries",
    "events",
    "inbound_messages",
    "idempotency_keys",
    "idempotent_responses",
    "operations",
)

Cursor = tuple[datetime, str]  # (the window's column, primary key) of a batch's last row


class RetentionCount(Table, tablename="retention_counts"):
    name = Varchar(length=40, primary_key=True)
    deleted = BigInt(default=0, help_text="Rows deleted (keys cleared) by retention, ever.")


@dataclass
class Batch:
    counts: dict[str, int]  # rows deleted (keys cleared) per name
    after: Cursor | None  # where the next batch starts; None when nothing more is due


async def _batch(column: Column, cutoff: datetime, limit: int, after: Cursor | None, condition=None):
    """The condition selecting the next batch: rows with `column` before `cutoff` (and
    `condition`), in (column, primary key) order, after `after`, at most `limit` of them;
    and the batch's last row (None when this is the last batch)."""
    table = column._meta.table
    pk = table._meta.primary_key
    where = column < cutoff
    if condition is not None:
        where &= condition
    if after is not None:
        at, key = after
        where &= (column >= at) & ((column > at) | (pk > key))
    row = await table.select(pk, column).where(where).order_by(column, pk).offset(limit - 1).first()
    if row is None:
        return where, None
    at, key = row[column._meta.name], row[pk._meta.name]
    return where & (column <= at) & ((column < at) | (pk <= key)), (at, key)


async def _named(column: Column, batch) -> list[str]:
    """The keys of the batch's rows that some row names in `column` (looked up by its index)."""
    rows = await column._meta.table.select(column).where(column.is_in(batch)).distinct()
    return sorted(row[column._meta.name] for row in rows)


async def forget_deliveries(cutoff: datetime, limit: int, after: Cursor | None = None) -> Batch:
    """Finished deliveries (succeeded, failed, cancelled) last touched before `cutoff`, with
    their attempts (those first). A pending one stays, whatever its age."""
    where, last = await _batch(Delivery.updated_at, cutoff, limit, after, Delivery.status != DeliveryStatus.PENDING)
    # Held until commit: a retry asked for meanwhile waits for this batch.
    await locked(Delivery.select(Delivery.id).where(where))
    attempts = (
        await DeliveryAttempt.delete()
        .where(DeliveryAttempt.delivery_id.is_in(Delivery.select(Delivery.id).where(where)))
        .returning(DeliveryAttempt.id)
    )
    deliveries = await Delivery.delete().where(where).returning(Delivery.id)
    return Batch({"delivery_attempts": len(attempts), "deliveries": len(deliveries)}, last)


async def forget_events(cutoff: datetime, limit: int, after: Cursor | None = None) -> Batch:
    """Events fanned out before `cutoff` whose deliveries are all gone."""
    where, last = await _batch(Event.dispatched_at, cutoff, limit, after)
    kept = await _named(Delivery.event_id, Event.select(Event.id).where(where))
    if kept:
        where &= Event.id.not_in(kept)
    return Batch({"events": len(await Event.delete().where(where).returning(Event.id))}, last)


async def forget_inbound_messages(cutoff: datetime, limit: int, after: Cursor | None = None) -> Batch:
    """Inbound webhook ids received before `cutoff`: a resend after that is a new webhook."""
    where, last = await _batch(InboundMessage.received_at, cutoff, limit, after)
    deleted = await InboundMessage.delete().where(where).returning(InboundMessage.message_key)
    return Batch({"inbound_messages": len(deleted)}, last)


async def forget_idempotency_keys(cutoff: datetime, limit: int, after: Cursor | None = None) -> Batch:
    """Clears the key of finished operations created before `cutoff` (whatever the key's
    format; read through the partial index of the keys still set): a replay after that
    makes a new operation. The operation itself stays."""
    where, last = await _batch(
        Operation.created_at,
        cutoff,
        limit,
        after,
        Operation.idem_key.is_not_null() & Operation.status.is_in(FINISHED_OPERATIONS),
    )
    cleared = await Operation.update({Operation.idem_key: None}).where(where).returning(Operation.id)
    return Batch({"idempotency_keys": len(cleared)}, last)


async def forget_idempotent_responses(cutoff: datetime, limit: int, after: Cursor | None = None) -> Batch:
    """Stored answers of POSTs (web/idempotent_posts.py) made before `cutoff`: a replay after
    that is a new request. A pending row that old belongs to a process that died."""
    where, last = await _batch(IdempotentResponse.created_at, cutoff, limit, after)
    deleted = await IdempotentResponse.delete().where(where).returning(IdempotentResponse.id)
    return Batch({"idempotent_responses": len(deleted)}, last)


async def forget_operations(cutoff: datetime, limit: int, after: Cursor | None = None) -> Batch:
    """Operations finished before `cutoff` that no remaining event names. Ledger entries
    keep their operation id (the ledger is never deleted)."""
    where, last = await _batch(Operation.finished_at, cutoff, limit, after, Operation.status.is_in(FINISHED_OPERATIONS))
    kept = await _named(Event.operation_id, Operation.select(Operation.id).where(where))
    if kept:
        where &= Operation.id.not_in(kept)
    return Batch({"operations": len(await Operation.delete().where(where).returning(Operation.id))}, last)


async def start_counts() -> None:
    """Makes the counters' rows (once), so that batches only add to them."""
    await RetentionCount.insert(*[RetentionCount(name=name, deleted=0) for name in NAMES]).on_conflict(
        target=RetentionCount.name, action="DO NOTHING"
    )


async def count_deleted(counts: dict[str, int]) -> None:
    """Adds a batch's figures to the totals, in the batch's transaction."""
    for name, n in counts.items():
        if not n:
            continue
        await RetentionCount.update({RetentionCount.deleted: RetentionCount.deleted + n}).where(
            RetentionCount.name == name
        )


async def totals() -> dict[str, int]:
    rows = await RetentionCount.select(RetentionCount.name, RetentionCount.deleted)
    found = {row["name"]: row["deleted"] for row in rows}
    return {name: found.get(name, 0) for name in NAMES}


async def oldest_kept() -> dict[str, datetime | None]:
    """The oldest row kept per table, by the column its window counts from, each read as the
    first entry of an index (None when there is none)."""

    async def first(column, condition=None):
        where = column.is_not_null() if condition is None else condition
        row = await column._meta.table.select(column).where(where).order_by(column).limit(1).first()
        return None if row is None else row[column._meta.name]

    return {
        "delivery_attempts": await first(DeliveryAttempt.attempted_at),
        "deliveries": await first(Delivery.updated_at),
        "events": await first(Event.dispatched_at),
        "inbound_messages": await first(InboundMessage.received_at),
        "idempotency_keys": await first(Operation.created_at, Operation.idem_key.is_not_null()),
        "idempotent_responses": await first(IdempotentResponse.created_at),
        "operations": await first(Operation.finished_at),
    }
