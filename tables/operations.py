"""Operations: every state-changing request, recorded before it is answered (the outbox)."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import msgspec
from piccolo.columns import JSON, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table

from rules.operations import OperationKind
from runtime.ids import new_id
from tables import keyset, leases
from tables.engine import insert_unless_taken, locked
from tables.operation_params import BY_KIND, Params, to_row
from tables.references import ORGANIZATION, reference
from tables.statements import Statement, fetch


class OperationStatus(StrEnum):
    """Where an operation is: accepted and waiting, taken by a worker, or finished either way."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


UNFINISHED = (OperationStatus.PENDING, OperationStatus.RUNNING)
FINISHED = (OperationStatus.SUCCEEDED, OperationStatus.FAILED)


class Operation(Table, tablename="operations"):
    id = Varchar(length=40, primary_key=True)
    kind = Varchar(length=20, choices=OperationKind, help_text="What was asked (rules.operations.OperationKind).")
    status = Varchar(length=20, choices=OperationStatus, default=OperationStatus.PENDING, index=True)
    organization_id = reference(ORGANIZATION, help_text="The organization acting.")
    account_id = Varchar(length=40, null=True, default=None, help_text="Who asked; null for the sweep.")
    idem_key = Varchar(
        length=300,
        null=True,
        default=None,
        unique=True,
        help_text="organization id + Idempotency-Key (or another natural key)",
    )
    request_hash = Varchar(
        length=64,
        null=True,
        default=None,
        help_text="sha256 of the request: its idem_key with another request is refused.",
    )
    params = JSON(default="{}", help_text="What the actor needs to run it, as accepted.")
    product_id = Varchar(length=40, null=True, default=None, index=True)
    result = JSON(null=True, default=None, help_text="What it did, once succeeded.")
    error_code = Varchar(length=60, null=True, default=None, help_text="Machine-readable reason, once failed.")
    error_message = Text(null=True, default=None)
    attempts = Integer(default=0, help_text="Times a worker took it.")
    failure = JSON(
        null=True,
        default=None,
        help_text="Ops only: the last unexpected exception (type, message, traceback, attempts, at).",
    )
    reference = Varchar(
        length=40,
        null=True,
        default=None,
        index=True,
        help_text="ref_...: quoted in an internal_error message; ops look the operation up by it.",
    )
    created_at = Timestamptz(index=True)
    enqueued_at = Timestamptz(
        null=True, default=None, help_text="When its message was last sent; null: to be sent by the relay."
    )
    started_at = Timestamptz(null=True, default=None, help_text="When a worker last took it (its lease starts).")
    finished_at = Timestamptz(null=True, default=None, index=True)
    parent_id = Varchar(
        length=40,
        null=True,
        default=None,
        index=True,
        help_text="The batch this operation is an item of (a bulk renewal).",
    )


class OperationRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An operation as the other layers read it. Built from a row by `record` (msgspec.convert,
    in C, on the execution path's every read). A select of fewer columns (the lists'
    `PUBLIC_FIELDS`, a claim's returned columns) reads the others at their column's default:
    its readers do not look at them."""

    id: str
    kind: OperationKind
    status: OperationStatus
    organization_id: str  # the organization acting
    created_at: datetime
    account_id: str | None = None  # who asked; None: tenure itself (a sweep) or a reseller's webhook
    idem_key: str | None = None
    request_hash: str | None = None
    # What the actor needs, as accepted: read with `operation_params.read(op, Kind)` / `of(op)`.
    params: dict = msgspec.field(default_factory=dict)
    product_id: str | None = None
    result: dict | None = None  # what it did, once succeeded
    error_code: str | None = None
    error_message: str | None = None
    attempts: int = 0  # times a worker took it
    failure: dict | None = None  # ops only: the last unexpected exception
    reference: str | None = None  # the ref_... of its internal_error message
    enqueued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    parent_id: str | None = None  # the bulk renewal it is an item of


def record(row: dict) -> OperationRecord:
    return msgspec.convert(row, OperationRecord)


def records(rows: list[dict]) -> list[OperationRecord]:
    return msgspec.convert(rows, list[OperationRecord])


def _found(row: dict | None) -> OperationRecord | None:
    return None if row is None else record(row)


# --- queries -----------------------------------------------------------------


PUBLIC_FIELDS = (
    Operation.id,
    Operation.kind,
    Operation.status,
    Operation.organization_id,
    Operation.product_id,
    Operation.result,
    Operation.error_code,
    Operation.error_message,
    Operation.created_at,
    Operation.finished_at,
)


def new_row(kind: str, org_id: str, now: datetime, *, params: Params | None = None, **fields) -> dict:
    """A pending operation's row (`fields` set its other columns); `params` of its kind's Struct."""
    if params is not None and not isinstance(params, BY_KIND[kind]):
        raise TypeError(f"a {kind} operation takes {BY_KIND[kind].__name__}, not {type(params).__name__}")
    return {
        "id": new_id("op"),
        "kind": kind,
        "status": OperationStatus.PENDING,
        "organization_id": org_id,
        "params": to_row(params) if params is not None else {},
        "created_at": now,
        "attempts": 0,
        **fields,
    }


_COLUMNS = (
    "id",
    "kind",
    "status",
    "organization_id",
    "account_id",
    "idem_key",
    "request_hash",
    "params",
    "product_id",
    "result",
    "error_code",
    "error_message",
    "attempts",
    "failure",
    "reference",
    "created_at",
    "enqueued_at",
    "started_at",
    "finished_at",
    "parent_id",
)
_JSON_COLUMNS = frozenset({"params", "result", "failure"})


def insert_sql(unless: str | None = None) -> str:
    """The INSERT of one operation (`insert_values` gives its values), nothing if its idempotency
    key is taken, returning its id. `unless`: an SQL condition, its placeholders after the row's,
    that inserts nothing either when true (PostgreSQL types the values from the columns)."""
    values = ", ".join("{}" for _ in _COLUMNS)
    source = f"VALUES ({values})" if unless is None else f"SELECT {values} WHERE NOT {unless}"
    return f"INSERT INTO operations ({', '.join(_COLUMNS)}) {source} ON CONFLICT (idem_key) DO NOTHING RETURNING id"


_INSERT = Statement(insert_sql())


def _value(row: dict, column: str):
    value = row.get(column, 0 if column == "attempts" else None)
    if column in _JSON_COLUMNS and value is not None:
        return msgspec.json.encode(value).decode()
    return value


def insert_values(row: dict) -> list:
    """The values `INSERT_SQL` takes for `row`, in order."""
    return [_value(row, column) for column in _COLUMNS]


async def insert_new(row: dict, statement: Statement = _INSERT, *guard) -> bool:
    """Inserts the operation in one statement (no transaction around it); False, inserting
    nothing, if its idempotency key is already taken (or `statement`'s guard holds: a
    `Statement(insert_sql(unless))` with the `guard` values its condition takes)."""
    return bool(await fetch(statement, *(_value(row, column) for column in _COLUMNS), *guard))


async def insert_or_get(row: dict) -> tuple[OperationRecord, bool]:
    """Inserts the operation (`row`: a `new_row`); if its idempotency key is taken, returns the existing one instead."""
    inserted = await insert_unless_taken(Operation(**row), Operation.idem_key)
    if inserted:
        return record(row), True
    existing = await Operation.select().where(Operation.idem_key == row["idem_key"]).output(load_json=True).first()
    return record(existing), False


async def get(op_id: str) -> OperationRecord | None:
    return _found(await Operation.select().where(Operation.id == op_id).output(load_json=True).first())


async def mark_running(op_id: str, now: datetime) -> OperationRecord | None:
    """pending/running -> running (visible to GET) and count the attempt; None if finished,
    else its attempts (this one included), kind and accept time."""
    updated = (
        await Operation.update(
            {
                Operation.status: OperationStatus.RUNNING,
                Operation.started_at: now,
                Operation.enqueued_at: now,
                Operation.attempts: Operation.attempts + 1,
            }
        )
        .where((Operation.id == op_id) & Operation.status.is_in(list(UNFINISHED)))
        .returning(
            Operation.id,
            Operation.attempts,
            Operation.kind,
            Operation.status,
            Operation.created_at,
            Operation.organization_id,
            Operation.parent_id,
        )
    )
    return record(updated[0]) if updated else None


async def claim(op_id: str) -> OperationRecord | None:
    """Inside the work transaction: the running operation, row-locked; None if another finished it."""
    return _found(
        await locked(Operation.select().where((Operation.id == op_id) & (Operation.status == OperationStatus.RUNNING)))
        .output(load_json=True)
        .first()
    )


async def claim_many(op_ids: list[str]) -> list[OperationRecord]:
    """`claim` for a batch in one statement: those of `op_ids` still running, row-locked."""
    return records(
        await locked(
            Operation.select().where(Operation.id.is_in(op_ids) & (Operation.status == OperationStatus.RUNNING))
        )
        .order_by(Operation.id)
        .output(load_json=True)
    )


async def finish(
    op_id: str,
    now: datetime,
    *,
    result: dict | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    product_id: str | None = None,
    reference: str | None = None,
    failure: dict | None = None,
) -> bool:
    """running/pending -> succeeded or failed, once; False if it was already finished."""
    values = {
        Operation.status: OperationStatus.FAILED if error_code else OperationStatus.SUCCEEDED,
        Operation.finished_at: now,
        Operation.result: result,
        Operation.error_code: error_code,
        Operation.error_message: error_message,
    }
    if product_id:
        values[Operation.product_id] = product_id
    if reference:
        values[Operation.reference] = reference
    if failure is not None:
        values[Operation.failure] = failure
    updated = (
        await Operation.update(values)
        .where((Operation.id == op_id) & Operation.status.is_in(list(UNFINISHED)))
        .returning(Operation.id)
    )
    return bool(updated)


async def set_result(op_id: str, result: dict) -> None:
    """The answer of an operation done in the request itself (a top-up, a settlement)."""
    await Operation.update({Operation.result: result}).where(Operation.id == op_id)


async def record_failure(op_id: str, failure: dict) -> None:
    """Keeps the last unexpected exception of an unfinished operation, for ops."""
    await Operation.update({Operation.failure: failure}).where(
        (Operation.id == op_id) & Operation.status.is_in(list(UNFINISHED))
    )


async def take_for_relay(
    cutoff: datetime,
    now: datetime,
    limit: int,
    *,
    resend_before: datetime | None = None,
    max_attempts: int | None = None,
    created_before: datetime | None = None,
) -> list[dict]:
    """Unfinished operations to send again, stamped now (a lease: two relays never both take one):
    never sent, or sent before `resend_before` (default `cutoff`); and, to be failed instead,
    the ones stalled since `cutoff` past their bounds (`max_attempts` attempts, or tried and
    accepted before `created_before`)."""
    due = Operation.enqueued_at.is_null() | (
        Operation.enqueued_at < (cutoff if resend_before is None else min(cutoff, resend_before))
    )
    bounds = None
    if max_attempts is not None:
        bounds = Operation.attempts >= max_attempts
    if created_before is not None:
        aged = (Operation.attempts >= 1) & (Operation.created_at < created_before)
        bounds = aged if bounds is None else (bounds | aged)
    if bounds is not None:
        due = due | ((Operation.enqueued_at < cutoff) & bounds)
    unfinished = Operation.status.is_in(list(UNFINISHED))
    return await leases.take_due(
        Operation,
        free=unfinished & due,
        stamp={Operation.enqueued_at: now},
        order_by=Operation.created_at,
        limit=limit,
        returning=(Operation.kind, Operation.attempts, Operation.created_at),
    )


async def unsent(op_id: str) -> None:
    """The send failed: let the relay pick it up at its next tick."""
    await Operation.update({Operation.enqueued_at: None}).where(Operation.id == op_id)


async def unsent_many(op_ids: list[str]) -> None:
    """Their sends failed: let the relay pick them up at its next tick."""
    await Operation.update({Operation.enqueued_at: None}).where(Operation.id.is_in(op_ids))


async def by_idem_key(idem_key: str) -> OperationRecord | None:
    return _found(await Operation.select().where(Operation.idem_key == idem_key).output(load_json=True).first())


async def for_ops(id_or_reference: str) -> OperationRecord | None:
    """An operation by its id or by the `ref_...` reference of its internal_error message."""
    column = Operation.reference if id_or_reference.startswith("ref_") else Operation.id
    return _found(await Operation.select().where(column == id_or_reference).output(load_json=True).first())


async def page_for_ops(status: str | None, kind: str | None, before: str | None, limit: int) -> list[OperationRecord]:
    """Operations newest first, optionally by status and kind (ids are time-ordered)."""
    query = Operation.select(*PUBLIC_FIELDS, Operation.attempts, Operation.reference)
    if status:
        query = query.where(Operation.status == status)
    if kind:
        query = query.where(Operation.kind == kind)
    if before:
        query = query.where(Operation.id < before)
    return records(await query.order_by(Operation.id, ascending=False).limit(limit).output(load_json=True))


async def counts_in_flight() -> list[dict]:
    """Pending and running operations by kind and status: read through the status index, so
    the cost follows the work in flight, not the table (finished ones are counted by workers)."""
    from piccolo.query.functions.aggregate import Count

    return (
        await Operation.select(Operation.kind, Operation.status, Count(alias="n"))
        .where(Operation.status.is_in(list(UNFINISHED)))
        .group_by(Operation.kind, Operation.status)
    )


# --- an organization's own operations -----------------------------------------


@dataclass(frozen=True)
class OrgFilter:
    """An organization's operations, without the kinds the reader may not see."""

    organization_id: str
    kind: str | None = None
    status: str | None = None
    since: datetime | None = None  # created_at >= this
    hidden_kinds: frozenset[str] = frozenset()

    def conditions(self) -> list:
        found = [Operation.organization_id == self.organization_id]
        if self.kind:
            found.append(Operation.kind == self.kind)
        if self.status:
            found.append(Operation.status == self.status)
        if self.since is not None:
            found.append(Operation.created_at >= self.since)
        if self.hidden_kinds:
            found.append(Operation.kind.not_in(sorted(self.hidden_kinds)))
        return found

    def select(self):
        return Operation.select(*PUBLIC_FIELDS).where(*self.conditions()).output(load_json=True)


async def org_page(wanted: OrgFilter, order: keyset.Keyset, limit: int) -> list[OperationRecord]:
    return records(await keyset.page(wanted.select, order, limit))


async def org_count(wanted: OrgFilter) -> int:
    return await Operation.count().where(*wanted.conditions())


def org_batches(wanted: OrgFilter, order: keyset.Keyset):
    return keyset.batches(wanted.select, order)


# --- batches (a bulk renewal and its child operations) --------------------------------

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


async def parent_of(op_id: str) -> str | None:
    row = await Operation.select(Operation.parent_id).where(Operation.id == op_id).first()
    return row["parent_id"] if row else None


async def touch(op_id: str, now: datetime) -> None:
    """A running batch was looked at: the relay sends it again only after a stall from now."""
    await Operation.update({Operation.enqueued_at: now}).where(
        (Operation.id == op_id) & (Operation.status == OperationStatus.RUNNING)
    )
