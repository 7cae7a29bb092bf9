"""Batches: a bulk renewal's operation and its child operations (started, inserted, read, counted)."""

from datetime import datetime

from tables.operations import UNFINISHED, Operation, OperationRecord, OperationStatus, get, records

BATCH_CHUNK = 200  # rows per INSERT: far below SQLite's limit on bound variables


async def start_batch(op_id: str, now: datetime) -> OperationRecord | None:
    """pending -> running, once (in the transaction that creates its children); None if it had started."""
    started = (
        await Operation.update(
            {
                Operation.status: OperationStatus.RUNNING,
                Operation.started_at: now,
                Operation.enqueued_at: now,
                Operation.attempts: Operation.attempts + 1,
            }
        )
        .where((Operation.id == op_id) & (Operation.status == OperationStatus.PENDING))
        .returning(Operation.id)
    )
    return await get(op_id) if started else None


async def insert_children(rows: list[dict]) -> list[str]:
    """Inserts a batch's child operations; a key already taken (a re-run) inserts nothing. Answers the new ids."""
    created: list[str] = []
    for start in range(0, len(rows), BATCH_CHUNK):
        chunk = rows[start : start + BATCH_CHUNK]
        inserted = (
            await Operation.insert(*(Operation(**row) for row in chunk))
            .on_conflict(target=Operation.idem_key, action="DO NOTHING")
            .returning(Operation.id)
        )
        created += [r["id"] for r in inserted]
    return created


async def children_of(parent_id: str) -> list[OperationRecord]:
    return records(
        await Operation.select(
            Operation.id,
            Operation.kind,
            Operation.status,
            Operation.organization_id,
            Operation.created_at,
            Operation.product_id,
            Operation.error_code,
            Operation.error_message,
        ).where(Operation.parent_id == parent_id)
    )


async def unfinished_children(parent_id: str) -> int:
    return await Operation.count().where((Operation.parent_id == parent_id) & Operation.status.is_in(list(UNFINISHED)))


async def touch(op_id: str, now: datetime) -> None:
    """A running batch was looked at: the relay sends it again only after a stall from now."""
    await Operation.update({Operation.enqueued_at: now}).where(
        (Operation.id == op_id) & (Operation.status == OperationStatus.RUNNING)
    )
