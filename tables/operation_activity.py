"""An operation's activity rows, written by the statements that accept and finish it: the
`operation.accepted` row with the operation's own insert, the `operation.succeeded`/`operation.failed`
row (its actor copied from the accepted row) with its event; and who asked for an operation."""

from __future__ import annotations

import sqlite3
from datetime import datetime

import msgspec
from msgspec import Struct
from piccolo.engine.postgres import PostgresEngine

from runtime.ids import new_id
from tables import accept_batches, event_payloads, events, operation_inserts, product_names
from tables.activity import TENURE, Activity, Actor, record_rows, row
from tables.engine import current
from tables.operations import OperationRecord
from tables.statements import Statement, fetch

_COLUMNS = (
    "id",
    "organization_id",
    "actor_type",
    "actor_id",
    "key_id",
    "kind",
    "product_id",
    "client_id",
    "operation_id",
    "details",
    "created_at",
)
_INSERT_COLUMNS = f"INSERT INTO activity ({', '.join(_COLUMNS)}) "
_CLIENT_OF = "(SELECT client FROM products WHERE products.id = {})"


def _json(value: dict) -> str:
    return msgspec.json.encode(value).decode()


def postgres() -> bool:
    return isinstance(current(), PostgresEngine)


def accepted_values(operation: dict, actor: Actor, client_id: str | None) -> list:
    """The values of an operation's `operation.accepted` row, in _COLUMNS order."""
    return [
        new_id("act"),
        operation["organization_id"],
        actor.type,
        actor.id,
        actor.key_id,
        "operation.accepted",
        operation.get("product_id"),
        client_id,
        operation["id"],
        _json({"kind": operation["kind"]}),
        operation["created_at"],
    ]


# SQLite: run in the accept's transaction, after the operation's insert.
ACCEPTED = Statement(
    _INSERT_COLUMNS + "VALUES ({}, {}, {}, {}, {}, {}, {}, COALESCE({}, " + _CLIENT_OF + "), {}, {}, {})"
)


def accepted_args(values: list) -> list:
    return [*values[:7], values[7], values[6], *values[8:]]


# The row an operation's end writes: the actor copied from its accepted row (system if none).
_FINISHED_SELECT = (
    "SELECT {}, {}, COALESCE(a.actor_type, 'system'), COALESCE(a.actor_id, 'system'), a.key_id, {}, "
    "{}, COALESCE(a.client_id, " + _CLIENT_OF + "), {}, {}, {} "
    "FROM (SELECT 1 AS one) AS one LEFT JOIN activity AS a "
    "ON a.operation_id = {} AND a.kind = 'operation.accepted'"
)
FINISHED = Statement(_INSERT_COLUMNS + _FINISHED_SELECT)
# PostgreSQL: the event and the activity row in one statement (one round trip per operation).
FINISHED_WITH_EVENT = Statement(
    "WITH evt AS (INSERT INTO events (id, type, organization_id, product_id, operation_id, data, "
    "created_at) VALUES ({}, {}, {}, {}, {}, {}::json, {}) RETURNING id) "
    + _INSERT_COLUMNS
    + _FINISHED_SELECT.replace("{}, {} FROM (SELECT 1 AS one) AS one", "{}::json, {}::timestamptz FROM evt AS one")
)


async def operation_finished(
    kind: str, operation: OperationRecord, now: datetime, *, product_id: str | None, event_data: Struct
) -> None:
    """In the operation's finishing transaction: its event (`kind`: operation.succeeded or
    operation.failed, as webhooks carry it) and its activity row."""
    details = _json({"kind": operation.kind})
    activity_args = [
        new_id("act"),
        operation.organization_id,
        kind,
        product_id,
        product_id,
        operation.id,
        details,
        now,
        operation.id,
    ]
    if postgres():
        event_args = [
            new_id("evt"),
            kind,
            operation.organization_id,
            product_id,
            operation.id,
            _json(event_payloads.stored(event_data)),
            now,
        ]
        await fetch(FINISHED_WITH_EVENT, *event_args, *activity_args)
        return
    await events.record(
        kind, operation.organization_id, now, operation_id=operation.id, product_id=product_id, data=event_data
    )
    await fetch(FINISHED, *activity_args)


# --- accepting an operation: its row and its `operation.accepted` row together ---------------


def _accept_with_operation(unless: str | None) -> Statement:
    """PostgreSQL: the operation and its accepted row in one statement (the accept path's one
    round trip); nothing when the operation's idempotency key is taken or `unless` holds."""
    return Statement(
        f"WITH op AS ({operation_inserts.insert_sql(unless)}, product_id), act AS ({_INSERT_COLUMNS}"
        "SELECT {}, {}, {}, {}, {}, {}, op.product_id, "
        "COALESCE({}, (SELECT client FROM products WHERE products.id = op.product_id)), "
        "op.id, {}::json, {}::timestamptz FROM op) SELECT id FROM op"
    )


ACCEPT_WITH_OPERATION = _accept_with_operation(None)
ACCEPT_UNLESS_NAME_HELD = _accept_with_operation(product_names.NAME_HELD)
# SQLite: the operation's insert of an accept whose name must be free, in its transaction.
OPERATION_UNLESS_NAME_HELD = Statement(operation_inserts.insert_sql(product_names.NAME_HELD))


def client_of(params: dict) -> str | None:
    """The reseller client an operation's params name, if any."""
    return params.get("client_id") or params.get("to_client")


async def insert_accepted(operation: dict, actor: Actor, *, unless_name_held: str | None = None) -> bool:
    """Inserts the operation and its `operation.accepted` row: one statement on PostgreSQL; on
    SQLite two, in a transaction shared with the other accepts waiting (tables/accept_batches.py),
    or in the caller's. False, inserting nothing, if the operation's idempotency key is
    taken, or if a product holds `unless_name_held` (a name key: tables.product_names.name_key)."""
    values = accepted_values(operation, actor, client_of(operation.get("params") or {}))
    guard = [] if unless_name_held is None else [unless_name_held]
    if postgres():
        statement = ACCEPT_WITH_OPERATION if unless_name_held is None else ACCEPT_UNLESS_NAME_HELD
        return bool(
            await fetch(
                statement, *operation_inserts.insert_values(operation), *guard, *values[:6], values[7], *values[9:]
            )
        )

    insert = operation_inserts.INSERT if unless_name_held is None else OPERATION_UNLESS_NAME_HELD
    insert_args = [*operation_inserts.insert_values(operation), *guard]
    if current().current_transaction.get() is not None:  # inside the caller's transaction
        inserted = bool(await fetch(insert, *insert_args))
        if inserted:
            await fetch(ACCEPTED, *accepted_args(values))
        return inserted

    def write(connection: sqlite3.Connection) -> bool:  # in the round's transaction, in its thread
        if not connection.execute(insert.qmarked, insert_args).fetchall():
            return False
        connection.execute(ACCEPTED.qmarked, accepted_args(values))
        return True

    return await accept_batches.in_next_round(write)  # with the other accepts waiting (group commit)


async def operations_accepted(rows: list[dict], actor: Actor, clients: dict[str, str | None]) -> None:
    """`operation.accepted` rows for operations tenure made itself (autorenewals, a bulk renewal's
    items), in one statement; `clients`: product id -> its client (if any)."""
    await record_rows(
        [
            row(
                op["organization_id"],
                "operation.accepted",
                actor,
                op["created_at"],
                product_id=op.get("product_id"),
                client_id=clients.get(op.get("product_id") or ""),
                operation_id=op["id"],
                details={"kind": op["kind"], "parent_id": op.get("parent_id")},
            )
            for op in rows
        ]
    )


async def actor_of(operation_id: str) -> Actor:
    """Who asked for an operation (its accepted row), tenure itself if nobody did."""
    found = (
        await Activity.select(Activity.actor_type, Activity.actor_id, Activity.key_id)
        .where((Activity.operation_id == operation_id) & (Activity.kind == "operation.accepted"))
        .first()
    )
    return Actor(found["actor_type"], found["actor_id"], found["key_id"]) if found else TENURE
