"""Claiming operations for a worker: the one a message names and, with it, pending ones of its kind.

A claim is the mark `running` (attempt counted, `started_at` and `enqueued_at` stamped) of
many operations in one statement; the work on each then runs in its own transaction, which
locks the row and re-checks it (`tables.operations.claim`), so exactly once does not rest on
the claim. The claim only spares the other workers the work:

- the named operation is taken if pending, or if running and either out of its lease
  (`started_at` before `lease_cutoff`: its worker died, the relay sent it again), failed
  last time (a retry), or named by a `retake` message (sent by the worker whose batch held
  it and broke off, e.g. with the database gone: no failure could be written); running
  within its lease otherwise, another worker holds it;
- other operations of its kind are taken only if pending.

On PostgreSQL the rows are taken with SKIP LOCKED, so two claims never wait on each other
(nor deadlock). A named operation that was skipped because another transaction held its row
is then waited for on its own (`claim_named`): a locked row may be one a worker is about to
finish, or one held by anything else, and a message must not be dropped for that.
SQLite has one writer at a time: one plain UPDATE does it.
"""

from __future__ import annotations

from datetime import datetime

from tables.engine import is_sqlite
from tables.operations import Operation, OperationRecord, record, records

RETURNED = "id, kind, status, attempts, created_at, organization_id, parent_id"  # an OperationRecord's
# Running and taken again only when its lease ran out or its last attempt failed.
RECLAIMABLE = "(status = 'running' AND (started_at IS NULL OR started_at < {} OR failure IS NOT NULL))"
# The named operation, when its message is a retake, is taken while running whatever its lease.
NAMED_RECLAIMABLE = "(status = 'running' AND ({} OR started_at IS NULL OR started_at < {} OR failure IS NOT NULL))"

_POSTGRES = f"""
WITH named AS (
    SELECT id FROM operations WHERE id = {{}} AND (status = 'pending' OR {NAMED_RECLAIMABLE})
    FOR UPDATE SKIP LOCKED
), others AS (
    SELECT id FROM operations WHERE status = 'pending' AND kind = {{}} AND id <> {{}}
    LIMIT {{}} FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE operations SET status = 'running', started_at = {{}}, enqueued_at = {{}},
                          attempts = attempts + 1
    WHERE id IN (SELECT id FROM named UNION ALL SELECT id FROM others)
    RETURNING {RETURNED}
)
SELECT {RETURNED}, TRUE AS claimed FROM claimed
UNION ALL
SELECT {RETURNED}, FALSE AS claimed FROM operations
WHERE id = {{}} AND (status = 'pending' OR {NAMED_RECLAIMABLE})
"""

_SQLITE = f"""
UPDATE operations SET status = 'running', started_at = {{}}, enqueued_at = {{}}, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM operations WHERE id = {{}} AND (status = 'pending' OR {NAMED_RECLAIMABLE})
    UNION ALL
    SELECT id FROM (SELECT id FROM operations WHERE status = 'pending' AND kind = {{}} AND id <> {{}}
                    LIMIT {{}})
)
RETURNING {RETURNED}
"""

_NAMED = f"""
UPDATE operations SET status = 'running', started_at = {{}}, enqueued_at = {{}}, attempts = attempts + 1
WHERE id = {{}} AND (status = 'pending' OR {NAMED_RECLAIMABLE})
RETURNING {RETURNED}
"""


async def claim_with_others(
    operation_id: str, kind: str, now: datetime, lease_cutoff: datetime, limit: int, *, retake: bool = False
) -> tuple[list[OperationRecord], bool]:
    """Marks running, in one statement, `operation_id` (if it is to be taken) and up to
    `limit - 1` other pending operations of `kind`. Answers the claimed rows, the named one
    first if taken, and whether the named one is to be taken but was locked by another
    transaction (then call `claim_named`, which waits for it). `retake`: the named one is taken
    while running whatever its lease (see the module's docstring)."""
    if is_sqlite():
        rows = await Operation.raw(
            _SQLITE, now, now, operation_id, retake, lease_cutoff, kind, operation_id, limit - 1
        ).run()
        return _named_first(records(rows), operation_id), False
    rows = await Operation.raw(
        _POSTGRES,
        operation_id,
        retake,
        lease_cutoff,
        kind,
        operation_id,
        limit - 1,
        now,
        now,
        operation_id,
        retake,
        lease_cutoff,
    ).run()
    claimed = records([row for row in rows if row["claimed"]])
    named_taken = any(op.id == operation_id for op in claimed)
    named_eligible = any(row["id"] == operation_id and not row["claimed"] for row in rows)
    return _named_first(claimed, operation_id), named_eligible and not named_taken


async def claim_named(
    operation_id: str, now: datetime, lease_cutoff: datetime, *, retake: bool = False
) -> OperationRecord | None:
    """Marks `operation_id` running if it is still to be taken, waiting for its row lock."""
    rows = await Operation.raw(_NAMED, now, now, operation_id, retake, lease_cutoff).run()
    return record(rows[0]) if rows else None


def _named_first(claimed: list[OperationRecord], operation_id: str) -> list[OperationRecord]:
    return sorted(claimed, key=lambda op: op.id != operation_id)
