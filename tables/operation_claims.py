"""Claiming operations for a worker: those a message names and, with them, pending ones of its kind.

A claim is the mark `running` (attempt counted, `started_at` and `enqueued_at` stamped) of
many operations in one statement; the work on each then runs in its own transaction, which
locks the row and re-checks it (`tables.operations.claim`), so exactly once does not rest on
the claim. The claim only spares the other workers the work:

- a named operation is taken if pending, or if running and either out of its lease
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

import json
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
    SELECT id FROM operations WHERE id = ANY({{}}) AND (status = 'pending' OR {NAMED_RECLAIMABLE})
    FOR UPDATE SKIP LOCKED
), others AS (
    SELECT id FROM operations WHERE status = 'pending' AND kind = {{}} AND NOT (id = ANY({{}}))
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
WHERE id = ANY({{}}) AND (status = 'pending' OR {NAMED_RECLAIMABLE})
"""

_SQLITE = f"""
UPDATE operations SET status = 'running', started_at = {{}}, enqueued_at = {{}}, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM operations WHERE id IN (SELECT value FROM json_each({{}}))
                                AND (status = 'pending' OR {NAMED_RECLAIMABLE})
    UNION ALL
    SELECT id FROM (SELECT id FROM operations
                    WHERE status = 'pending' AND kind = {{}} AND id NOT IN (SELECT value FROM json_each({{}}))
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
    named: list[str], kind: str, now: datetime, lease_cutoff: datetime, limit: int, *, retake: bool = False
) -> tuple[list[OperationRecord], list[str]]:
    """Marks running, in one statement, the `named` operations that are to be taken and other
    pending operations of `kind`, up to `limit` in all. Answers the claimed rows, the named
    ones first, and the named ones to be taken but locked by another transaction (call
    `claim_named` for each: it waits). `retake`: the named ones are taken while running
    whatever their lease (see the module's docstring)."""
    others = max(limit - len(named), 0)
    if is_sqlite():
        listed = json.dumps(named)
        rows = await Operation.raw(_SQLITE, now, now, listed, retake, lease_cutoff, kind, listed, others).run()
        return _named_first(records(rows), named), []
    rows = await Operation.raw(
        _POSTGRES, named, retake, lease_cutoff, kind, named, others, now, now, named, retake, lease_cutoff
    ).run()
    claimed = records([row for row in rows if row["claimed"]])
    taken = {op.id for op in claimed}
    locked = [row["id"] for row in rows if not row["claimed"] and row["id"] not in taken]
    return _named_first(claimed, named), locked


async def claim_named(
    operation_id: str, now: datetime, lease_cutoff: datetime, *, retake: bool = False
) -> OperationRecord | None:
    """Marks `operation_id` running if it is still to be taken, waiting for its row lock."""
    rows = await Operation.raw(_NAMED, now, now, operation_id, retake, lease_cutoff).run()
    return record(rows[0]) if rows else None


def _named_first(claimed: list[OperationRecord], named: list[str]) -> list[OperationRecord]:
    first = set(named)
    return sorted(claimed, key=lambda op: op.id not in first)
