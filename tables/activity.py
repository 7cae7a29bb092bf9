"""The audit record: every change an organization sees, who made it, written in the change's transaction.

Who (`actor_type`, `actor_id`, `key_id`): an account and the API key it used, a verified
reseller webhook (`actor_id` is its `webhook-id`), or tenure itself (`system`: sweeps,
autorenewals). An operation's later rows (`operation.succeeded`, `operation.failed`) keep
the actor of its `operation.accepted` row, copied in SQL by the statement that writes them.

Never deleted: retention (tables/retention.py) does not know this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import msgspec
from msgspec import Struct
from piccolo.columns import JSON, Timestamptz, Varchar
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

from runtime.ids import new_id
from tables import accept_batches, event_payloads, events, operations, products
from tables.accounts import AccountRecord
from tables.api_keys import Caller
from tables.engine import current
from tables.operations import OperationRecord
from tables.references import ORGANIZATION, reference
from tables.statements import Statement, fetch


class Activity(Table, tablename="activity"):
    id = Varchar(length=40, primary_key=True)
    organization_id = reference(ORGANIZATION, help_text="The organization that sees it.")
    actor_type = Varchar(length=20, help_text="account, webhook, ops or system")
    actor_id = Varchar(
        length=200, index=True, help_text="The account's id, the reseller webhook's webhook-id, or `system`."
    )
    key_id = Varchar(length=40, null=True, default=None, help_text="The API key an account used.")
    kind = Varchar(length=60, index=True, help_text="What happened: team.created, operation.accepted, ...")
    product_id = Varchar(length=40, null=True, default=None, index=True)
    client_id = Varchar(length=40, null=True, default=None, index=True)
    operation_id = Varchar(length=40, null=True, default=None, index=True)
    details = JSON(default="{}", help_text="Other ids and values involved; never a secret.")
    created_at = Timestamptz(index=True)


SYSTEM = "system"
CHUNK = 500  # rows per insert: 11 parameters each, well under both databases' limits


@dataclass(frozen=True)
class Actor:
    type: str  # account, webhook, system
    id: str
    key_id: str | None = None

    @classmethod
    def account(cls, account: AccountRecord) -> Actor:
        """The caller of an API route (web.access.provide_account), or an account just made for it."""
        return cls("account", account.id, account.key_id if isinstance(account, Caller) else None)

    @classmethod
    def webhook(cls, webhook_id: str) -> Actor:
        return cls("webhook", webhook_id)

    @classmethod
    def ops(cls) -> Actor:
        """The operators, through the ops API (ops holds one shared token: no account)."""
        return cls("ops", "ops")


TENURE = Actor(SYSTEM, SYSTEM)


def row(
    organization_id: str,
    kind: str,
    actor: Actor,
    now: datetime,
    *,
    product_id: str | None = None,
    client_id: str | None = None,
    operation_id: str | None = None,
    details: dict | None = None,
    **more,
) -> dict:
    """An activity row; `details` and `more` (other ids and values, None left out) go to `details`."""
    kept = {k: v for k, v in {**(details or {}), **more}.items() if v is not None}
    return {
        "id": new_id("act"),
        "organization_id": organization_id,
        "actor_type": actor.type,
        "actor_id": actor.id,
        "key_id": actor.key_id,
        "kind": kind,
        "product_id": product_id,
        "client_id": client_id,
        "operation_id": operation_id,
        "details": kept,
        "created_at": now,
    }


async def record(organization_id: str, kind: str, actor: Actor, now: datetime, **ids) -> None:
    """One activity row, in the caller's transaction. `ids`: product_id, client_id, operation_id,
    and whatever else names what changed (kept in `details`)."""
    await record_rows([row(organization_id, kind, actor, now, **ids)])


async def record_rows(rows: list[dict]) -> None:
    """Several rows (one organization each) in one statement."""
    for start in range(0, len(rows), CHUNK):
        await Activity.insert(*(Activity(**each) for each in rows[start : start + CHUNK]))


# --- operations: written by the statements that accept and finish them --------------------

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
        f"WITH op AS ({operations.insert_sql(unless)}, product_id), act AS ({_INSERT_COLUMNS}"
        "SELECT {}, {}, {}, {}, {}, {}, op.product_id, "
        "COALESCE({}, (SELECT client FROM products WHERE products.id = op.product_id)), "
        "op.id, {}::json, {}::timestamptz FROM op) SELECT id FROM op"
    )


ACCEPT_WITH_OPERATION = _accept_with_operation(None)
ACCEPT_UNLESS_NAME_HELD = _accept_with_operation(products.NAME_HELD)
# SQLite: the operation's insert of an accept whose name must be free, in its transaction.
OPERATION_UNLESS_NAME_HELD = Statement(operations.insert_sql(products.NAME_HELD))


def client_of(params: dict) -> str | None:
    """The reseller client an operation's params name, if any."""
    return params.get("client_id") or params.get("to_client")


async def insert_accepted(operation: dict, actor: Actor, *, unless_name_held: str | None = None) -> bool:
    """Inserts the operation and its `operation.accepted` row: one statement on PostgreSQL; on
    SQLite two, in a transaction shared with the other accepts waiting (tables/accept_batches.py),
    or in the caller's. False, inserting nothing, if the operation's idempotency key is
    taken, or if a product holds `unless_name_held` (a name key: tables.products.name_key)."""
    values = accepted_values(operation, actor, client_of(operation.get("params") or {}))
    guard = [] if unless_name_held is None else [unless_name_held]
    if postgres():
        statement = ACCEPT_WITH_OPERATION if unless_name_held is None else ACCEPT_UNLESS_NAME_HELD
        return bool(
            await fetch(statement, *operations.insert_values(operation), *guard, *values[:6], values[7], *values[9:])
        )

    async def write() -> bool:
        if unless_name_held is None:
            inserted = await operations.insert_new(operation)
        else:
            inserted = await operations.insert_new(operation, OPERATION_UNLESS_NAME_HELD, unless_name_held)
        if inserted:
            await fetch(ACCEPTED, *accepted_args(values))
        return inserted

    if current().current_transaction.get() is not None:  # inside the caller's transaction
        return await write()
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


# --- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    organization_id: str
    actor: str | None = None  # an account id, a webhook-id, `system`, or `webhook` (any webhook)
    kind: str | None = None
    product_id: str | None = None
    client_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list:
        found = [Activity.organization_id == self.organization_id]
        if self.actor == "webhook":
            found.append(Activity.actor_type == "webhook")
        elif self.actor is not None:
            found.append(Activity.actor_id == self.actor)
        if self.kind is not None:
            found.append(Activity.kind == self.kind)
        if self.product_id is not None:
            found.append(Activity.product_id == self.product_id)
        if self.client_id is not None:
            found.append(Activity.client_id == self.client_id)
        if self.since is not None:
            found.append(Activity.created_at >= self.since)
        if self.until is not None:
            found.append(Activity.created_at < self.until)
        return found

    def select(self):
        return Activity.select().where(*self.conditions()).output(load_json=True)


async def count(wanted: Filter) -> int:
    return await Activity.count().where(*wanted.conditions())
