"""Retention: the queries that forget expired rows, one small batch at a time.

A batch reads at most `limit` candidates through the index on the column its window
counts from, oldest first, starting after the previous batch's last row (a keyset cursor:
rows kept on purpose, and the dead index entries of rows just deleted, are not read
again), then deletes them by primary key. Each runs in the caller's transaction: the job
(worker/retention.py) commits every batch on its own, so no lock is held for long. The
checks for rows that must stay are lookups by index on the candidates (never an
anti-join left to the planner, which could pick a scan of both tables).

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

from tables.engine import is_sqlite
from tables.events import Event
from tables.operations import Operation
from tables.webhooks import Delivery, DeliveryAttempt, InboundMessage

FINISHED_OPERATIONS = ["succeeded", "failed"]
# What /metrics reports, by name: the tables, and the idempotency keys (cleared, not deleted).
NAMES = ("delivery_attempts", "deliveries", "events", "inbound_messages", "idempotency_keys",
         "operations")

Cursor = tuple[datetime, str]  # (the window's column, primary key) of the last row read


class RetentionCount(Table, tablename="retention_counts"):
    name = Varchar(length=40, primary_key=True)
    deleted = BigInt(default=0, help_text="Rows deleted (keys cleared) by retention, ever.")


@dataclass
class Batch:
    counts: dict[str, int]  # rows deleted (keys cleared) per name
    after: Cursor | None  # where the next batch starts; None when nothing more is due


async def _candidates(column: Column, cutoff: datetime, limit: int, after: Cursor | None,
                      condition=None, lock: bool = False) -> tuple[list[str], Cursor | None]:
    """Primary keys of up to `limit` rows with `column` before `cutoff` (and `condition`),
    in (column, key) order after `after`; and the cursor for the next batch."""
    table = column._meta.table
    pk = table._meta.primary_key
    where = column < cutoff
    if condition is not None:
        where &= condition
    if after is not None:
        at, key = after
        where &= (column >= at) & ((column > at) | (pk > key))
    query = table.select(pk, column).where(where).order_by(column, pk).limit(limit)
    if lock and not is_sqlite():
        query = query.lock_rows(skip_locked=True)  # a row being changed is left for the next run
    rows = await query
    pk_name, column_name = pk._meta.name, column._meta.name
    last = (rows[-1][column_name], rows[-1][pk_name]) if len(rows) == limit else None
    return [row[pk_name] for row in rows], last


async def _named(column: Column, keys: list[str]) -> set[str]:
    """Which of `keys` some row names in `column` (read through its index)."""
    if not keys:
        return set()
    rows = await column._meta.table.select(column).where(column.is_in(keys)).distinct()
    return {row[column._meta.name] for row in rows}


async def _delete(table: type[Table], keys: list[str], condition=None) -> int:
    if not keys:
        return 0
    pk = table._meta.primary_key
    where = pk.is_in(keys) if condition is None else pk.is_in(keys) & condition
    return len(await table.delete().where(where).returning(pk))


async def forget_deliveries(cutoff: datetime, limit: int, after: Cursor | None = None) -> Batch:
    """Finished deliveries (succeeded, failed, cancelled) last touched before `cutoff`, with
    their attempts (those first). A pending one stays, whatever its age."""
    ids, last = await _candidates(Delivery.updated_at, cutoff, limit, after,
                                  Delivery.status != "pending", lock=True)
    attempts = 0
    if ids:
        attempts = len(await DeliveryAttempt.delete().where(
            DeliveryAttempt.delivery_id.is_in(ids)).returning(DeliveryAttempt.id))
    deliveries = await _delete(Delivery, ids, Delivery.status != "pending")
    return Batch({"delivery_attempts": attempts, "deliveries": deliveries}, last)


async def forget_events(cutoff: datetime, limit: int, after: Cursor | None = None) -> Batch:
    """Events fanned out before `cutoff` whose deliveries are all gone."""
    ids, last = await _candidates(Event.dispatched_at, cutoff, limit, after)
    kept = await _named(Delivery.event_id, ids)
    return Batch({"events": await _delete(Event, [i for i in ids if i not in kept])}, last)


async def forget_inbound_messages(cutoff: datetime, limit: int, after: Cursor | None = None) -> Batch:
    """Inbound webhook ids received before `cutoff`: a resend after that is a new webhook."""
    keys, last = await _candidates(InboundMessage.received_at, cutoff, limit, after)
    return Batch({"inbound_messages": await _delete(InboundMessage, keys)}, last)


async def forget_idempotency_keys(cutoff: datetime, limit: int, after: Cursor | None = None) -> Batch:
    """Clears the key of finished operations created before `cutoff` (whatever the key's
    format; read through the partial index of the keys still set): a replay after that
    makes a new operation. The operation itself stays."""
    ids, last = await _candidates(Operation.created_at, cutoff, limit, after,
                                  Operation.idem_key.is_not_null() & Operation.status.is_in(FINISHED_OPERATIONS))
    cleared = 0
    if ids:
        cleared = len(await Operation.update({Operation.idem_key: None}).where(
            Operation.id.is_in(ids) & Operation.idem_key.is_not_null()).returning(Operation.id))
    return Batch({"idempotency_keys": cleared}, last)


async def forget_operations(cutoff: datetime, limit: int, after: Cursor | None = None) -> Batch:
    """Operations finished before `cutoff` that no remaining event names. Ledger entries
    keep their operation id (the ledger is never deleted)."""
    ids, last = await _candidates(Operation.finished_at, cutoff, limit, after,
                                  Operation.status.is_in(FINISHED_OPERATIONS))
    kept = await _named(Event.operation_id, ids)
    return Batch({"operations": await _delete(Operation, [i for i in ids if i not in kept])}, last)


async def start_counts() -> None:
    """Makes the counters' rows (once), so that batches only add to them."""
    await RetentionCount.insert(*[RetentionCount(name=name, deleted=0) for name in NAMES]).on_conflict(
        target=RetentionCount.name, action="DO NOTHING")


async def count_deleted(counts: dict[str, int]) -> None:
    """Adds a batch's figures to the totals, in the batch's transaction."""
    for name, n in counts.items():
        if not n:
            continue
        await RetentionCount.update({RetentionCount.deleted: RetentionCount.deleted + n}).where(
            RetentionCount.name == name)


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
        "operations": await first(Operation.finished_at),
    }
