"""A batch of purchases written set-wise: on PostgreSQL one statement for all of them, on
SQLite one `executemany` per table, in the batch's transaction.

The batch's products (ON CONFLICT on the name: a name taken meanwhile inserts nothing) and
their schedule rows, their ledger lines, their events (`product.purchased`, then each
operation's `operation.succeeded` or `operation.failed`), the operations' activity rows (the
actor copied from each one's `operation.accepted` row) and the operations' end (only those
still unfinished) are written by one statement of data-modifying CTEs over arrays (`unnest`):
its text does not depend on the batch's size, so asyncpg prepares it once per connection.
It answers how many products and operations it wrote: the caller rolls the batch back
when a product or an operation is missing (a name taken, an operation finished elsewhere).

SQLite has neither `unnest` nor data-modifying CTEs; there the same rows go through the
transaction's own connection, one prepared statement per table run over all the batch's rows
(`executemany`: one hop to the database thread each, not one per row), with the same
conditions (a name taken inserts no product, an operation already finished is not ended).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from tables.engine import current, is_sqlite
from tables.operations import OperationRecord
from tables.statements import Statement, fetch


def _unnest(*typed: str) -> str:
    return "unnest(" + ", ".join(f"{{}}::{kind}[]" for kind in typed) + ")"


_PRODUCTS = ("id", "kind", "name", "organization", "client", "reseller", "expires_at", "autorenew", "state")
_PRODUCT_TYPES = ("varchar",) * 6 + ("timestamptz", "boolean", "varchar", "varchar", "timestamptz")
_LEDGER = (
    "id",
    "txn_id",
    "book",
    "organization_id",
    "amount",
    "currency",
    "operation_id",
    "created_at",
    "kind",
    "product_id",
    "product_kind",
    "client_id",
)
_LEDGER_TYPES = ("varchar",) * 4 + ("bigint", "varchar", "varchar", "timestamptz") + ("varchar",) * 4

WRITE = Statement(
    f"""
WITH prd AS (
    INSERT INTO products ({", ".join(_PRODUCTS)}, name_key, created_at, updated_at)
    SELECT v.*, v.created_at FROM {_unnest(*_PRODUCT_TYPES)}
         AS v({", ".join(_PRODUCTS)}, name_key, created_at)
    ON CONFLICT (name_key) DO NOTHING RETURNING id
), sch AS (
    INSERT INTO product_schedules (product, next_autorenew_at, next_reminder_at, next_state_at, sandbox)
    SELECT v.product, v.a, v.r, v.s, v.sandbox
    FROM {_unnest("varchar", "timestamptz", "timestamptz", "timestamptz", "boolean")}
         AS v(product, a, r, s, sandbox)
    JOIN prd ON prd.id = v.product
), led AS (
    INSERT INTO ledger_entries ({", ".join(_LEDGER)}) SELECT * FROM {_unnest(*_LEDGER_TYPES)}
), evt AS (
    INSERT INTO events (id, type, organization_id, product_id, operation_id, data, created_at)
    SELECT v.id, v.type, v.org, v.product_id, v.op, v.data::json, v.at
    FROM {_unnest("varchar", "varchar", "varchar", "varchar", "varchar", "text", "timestamptz")}
         AS v(id, type, org, product_id, op, data, at)
), act AS (
    INSERT INTO activity (id, organization_id, actor_type, actor_id, key_id, kind, product_id, client_id,
                          operation_id, details, created_at)
    SELECT v.id, v.org, COALESCE(a.actor_type, 'system'), COALESCE(a.actor_id, 'system'), a.key_id, v.kind,
           v.product_id, COALESCE(a.client_id, v.client_id), v.op, v.details::json, v.at
    FROM {_unnest("varchar", "varchar", "varchar", "varchar", "varchar", "varchar", "text", "timestamptz")}
         AS v(id, org, kind, product_id, client_id, op, details, at)
    LEFT JOIN activity AS a ON a.operation_id = v.op AND a.kind = 'operation.accepted'
), ops AS (
    UPDATE operations AS o
    SET status = v.status, finished_at = v.at, result = v.result::json, error_code = v.code,
        error_message = v.message, product_id = COALESCE(v.product_id, o.product_id)
    FROM {_unnest("varchar", "varchar", "timestamptz", "text", "varchar", "text", "varchar")}
         AS v(id, status, at, result, code, message, product_id)
    WHERE o.id = v.id AND o.status IN ('pending', 'running')
    RETURNING o.id
)
SELECT (SELECT count(*) FROM prd) AS products, (SELECT count(*) FROM ops) AS operations
"""
)


def _marks(count: int) -> str:
    return ", ".join(f"?{n}" for n in range(1, count + 1))


SQLITE_PRODUCTS = (
    f"INSERT INTO products ({', '.join(_PRODUCTS)}, name_key, created_at, updated_at) "
    f"VALUES ({_marks(len(_PRODUCTS) + 2)}, ?{len(_PRODUCTS) + 2}) ON CONFLICT (name_key) DO NOTHING"
)
SQLITE_SCHEDULES = (
    "INSERT INTO product_schedules (product, next_autorenew_at, next_reminder_at, next_state_at, sandbox) "
    f"VALUES ({_marks(5)})"
)
SQLITE_LEDGER = f"INSERT INTO ledger_entries ({', '.join(_LEDGER)}) VALUES ({_marks(len(_LEDGER))})"
SQLITE_EVENTS = (
    f"INSERT INTO events (id, type, organization_id, product_id, operation_id, data, created_at) VALUES ({_marks(7)})"
)
SQLITE_ACTIVITY = """
INSERT INTO activity (id, organization_id, actor_type, actor_id, key_id, kind, product_id, client_id,
                      operation_id, details, created_at)
SELECT ?1, ?2, COALESCE(a.actor_type, 'system'), COALESCE(a.actor_id, 'system'), a.key_id, ?3, ?4,
       COALESCE(a.client_id, ?5), ?6, ?7, ?8
FROM (SELECT 1) LEFT JOIN activity AS a ON a.operation_id = ?9 AND a.kind = 'operation.accepted'
"""
SQLITE_OPERATIONS = """
UPDATE operations SET status = ?2, finished_at = ?3, result = ?4, error_code = ?5, error_message = ?6,
                      product_id = COALESCE(?7, product_id)
WHERE id = ?1 AND status IN ('pending', 'running')
"""


def _json(value) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


@dataclass
class PurchaseWrites:
    """The rows of a batch of purchases, column by column, as `WRITE` takes them."""

    products: list[list] = field(default_factory=lambda: [[] for _ in range(11)])
    schedules: list[list] = field(default_factory=lambda: [[] for _ in range(5)])
    ledger: list[list] = field(default_factory=lambda: [[] for _ in _LEDGER])
    events: list[list] = field(default_factory=lambda: [[] for _ in range(7)])
    activity: list[list] = field(default_factory=lambda: [[] for _ in range(8)])
    operations: list[list] = field(default_factory=lambda: [[] for _ in range(7)])

    @staticmethod
    def _add(columns: list[list], *values) -> None:
        for column, value in zip(columns, values, strict=True):
            column.append(value)

    def product(self, row: dict, name_key: str | None, schedule: dict, sandbox: bool) -> None:
        self._add(self.products, *(row[c] for c in _PRODUCTS), name_key, row["created_at"])
        self._add(
            self.schedules,
            row["id"],
            schedule.get("next_autorenew_at"),
            schedule.get("next_reminder_at"),
            schedule.get("next_state_at"),
            sandbox,
        )

    def ledger_lines(self, rows: list[dict]) -> None:
        for row in rows:
            self._add(self.ledger, *(row[c] for c in _LEDGER))

    def event(self, event_id: str, type: str, org_id: str, product_id: str | None, op_id: str, data, at) -> None:
        self._add(self.events, event_id, type, org_id, product_id, op_id, _json(data), at)

    def activity_row(
        self, activity_id: str, op: OperationRecord, kind: str, product_id: str | None, client_id, at
    ) -> None:
        self._add(
            self.activity,
            activity_id,
            op.organization_id,
            kind,
            product_id,
            client_id,
            op.id,
            _json({"kind": op.kind}),
            at,
        )

    def finish(self, op_id: str, status: str, at: datetime, *, result=None, code=None, message=None, product_id=None):
        self._add(self.operations, op_id, status, at, _json(result), code, message, product_id)

    def codes(self) -> dict[str, str | None]:
        """Each operation's error code (None for one that succeeded)."""
        return dict(zip(self.operations[0], self.operations[4], strict=True))

    async def write(self) -> tuple[int, int]:
        """Writes everything (see the module); answers (products, operations) written."""
        if is_sqlite():
            return await self._write_on_sqlite()
        args = [*self.products, *self.schedules, *self.ledger, *self.events, *self.activity, *self.operations]
        row = (await fetch(WRITE, *args))[0]
        return int(row["products"]), int(row["operations"])

    async def _write_on_sqlite(self) -> tuple[int, int]:
        transaction = current().current_transaction.get()
        if transaction is None:
            raise RuntimeError("a batch of purchases is written inside its transaction")
        connection = transaction.connection

        async def each(sql: str, columns: list[list]) -> int:
            cursor = await connection.executemany(sql, list(zip(*columns, strict=True)))
            return cursor.rowcount

        products = await each(SQLITE_PRODUCTS, self.products)
        if products == len(self.products[0]):  # else the batch is rolled back: a name was taken
            await each(SQLITE_SCHEDULES, self.schedules)
        await each(SQLITE_LEDGER, self.ledger)
        await each(SQLITE_EVENTS, self.events)
        await each(SQLITE_ACTIVITY, [*self.activity, self.activity[5]])
        return products, await each(SQLITE_OPERATIONS, self.operations)
