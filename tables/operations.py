"""Operations: every state-changing request, recorded before it is answered (the outbox): the table,
its records, and reading and finishing one. Writing a new one: tables.operation_inserts; sending
them: tables.operation_relay; claiming them: tables.operation_claims; a bulk renewal's children:
tables.operation_batches; an organization's lists: tables.operation_lists."""

from datetime import datetime
from enum import StrEnum

import msgspec
from piccolo.columns import JSON, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table

from rules.operations import OperationKind
from runtime.ids import new_id
from tables.engine import locked
from tables.operation_params import BY_KIND, Params, to_row
from tables.references import ORGANIZATION, reference


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
