"""Retention: the queries that forget expired rows, one small batch at a time.

Each `forget_*` takes at most `limit` rows, found through an index on the column its
window is counted from (oldest first), and runs in the caller's transaction: the job
(worker/retention.py) commits every batch on its own, so no lock is held for long.
What is never deleted here: unfinished operations, pending deliveries, events not yet
fanned out or with deliveries left, and the ledger, balances, products and audit record.

The rows deleted are counted per table in `retention_counts` (in the batch's own
transaction), so every web replica's /metrics shows the same cluster-wide counters.
"""

from __future__ import annotations

from datetime import datetime

from piccolo.columns import BigInt, Varchar
from piccolo.columns.combination import WhereRaw
from piccolo.table import Table

from tables.engine import is_sqlite
from tables.events import Event
from tables.operations import Operation
from tables.webhooks import Delivery, DeliveryAttempt, InboundMessage

FINISHED_OPERATIONS = ["succeeded", "failed"]
# What /metrics reports, by name: the tables, and the idempotency keys (cleared, not deleted).
NAMES = ("delivery_attempts", "deliveries", "events", "inbound_messages", "idempotency_keys",
         "operations")
# Partial index (created by a migration): the keys still set, by age.
IDEM_KEY_INDEX = "operations_created_at_idem_key_set"


class RetentionCount(Table, tablename="retention_counts"):
    name = Varchar(length=40, primary_key=True)
    deleted = BigInt(default=0, help_text="Rows deleted (keys cleared) by retention, ever.")


async def forget_deliveries(cutoff: datetime, limit: int) -> dict[str, int]:
    """Finished deliveries (succeeded, failed, cancelled) last touched before `cutoff`, with
    their attempts (those first). A pending one stays, whatever its age."""
    query = Delivery.select(Delivery.id).where(
        (Delivery.updated_at < cutoff) & (Delivery.status != "pending")
    ).order_by(Delivery.updated_at).limit(limit)
    if not is_sqlite():  # a retry asked for meanwhile waits for this batch, or is skipped by it
        query = query.lock_rows(skip_locked=True)
    ids = [row["id"] for row in await query]
    if not ids:
        return {"delivery_attempts": 0, "deliveries": 0}
    attempts = await DeliveryAttempt.delete().where(
        DeliveryAttempt.delivery_id.is_in(ids)).returning(DeliveryAttempt.id)
    deliveries = await Delivery.delete().where(
        Delivery.id.is_in(ids) & (Delivery.status != "pending")).returning(Delivery.id)
    return {"delivery_attempts": len(attempts), "deliveries": len(deliveries)}


async def forget_events(cutoff: datetime, limit: int) -> int:
    """Events fanned out before `cutoff` whose deliveries are all gone."""
    expired = Event.select(Event.id).where(
        (Event.dispatched_at < cutoff)
        & WhereRaw("NOT EXISTS (SELECT 1 FROM deliveries WHERE deliveries.event_id = events.id)")
    ).order_by(Event.dispatched_at).limit(limit)
    return len(await Event.delete().where(Event.id.is_in(expired)).returning(Event.id))


async def forget_inbound_messages(cutoff: datetime, limit: int) -> int:
    """Inbound webhook ids received before `cutoff`: a resend after that is a new webhook."""
    expired = InboundMessage.select(InboundMessage.message_key).where(
        InboundMessage.received_at < cutoff).order_by(InboundMessage.received_at).limit(limit)
    return len(await InboundMessage.delete().where(
        InboundMessage.message_key.is_in(expired)).returning(InboundMessage.message_key))


async def forget_idempotency_keys(cutoff: datetime, limit: int) -> int:
    """Clears the key of finished operations created before `cutoff` (whatever the key's
    format): a replay after that makes a new operation. The operation itself stays."""
    expired = Operation.select(Operation.id).where(
        Operation.idem_key.is_not_null() & (Operation.created_at < cutoff)
        & Operation.status.is_in(FINISHED_OPERATIONS)
    ).order_by(Operation.created_at).limit(limit)
    return len(await Operation.update({Operation.idem_key: None}).where(
        Operation.id.is_in(expired)).returning(Operation.id))


async def forget_operations(cutoff: datetime, limit: int) -> int:
    """Operations finished before `cutoff` that no remaining event names. Ledger entries
    keep their operation id (the ledger is never deleted)."""
    expired = Operation.select(Operation.id).where(
        (Operation.finished_at < cutoff) & Operation.status.is_in(FINISHED_OPERATIONS)
        & WhereRaw("NOT EXISTS (SELECT 1 FROM events WHERE events.operation_id = operations.id)")
    ).order_by(Operation.finished_at).limit(limit)
    return len(await Operation.delete().where(Operation.id.is_in(expired)).returning(Operation.id))


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
