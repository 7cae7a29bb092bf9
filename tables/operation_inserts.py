"""Writing a new operation: the raw INSERT (its SQL and values, for the statements that write more
with it) in one statement, or unless its idempotency key is taken (then answering the existing one)."""

import msgspec

from tables.engine import insert_unless_taken
from tables.operations import Operation, OperationRecord, record
from tables.statements import Statement

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


INSERT = Statement(insert_sql())


def _value(row: dict, column: str):
    value = row.get(column, 0 if column == "attempts" else None)
    if column in _JSON_COLUMNS and value is not None:
        return msgspec.json.encode(value).decode()
    return value


def insert_values(row: dict) -> list:
    """The values `INSERT_SQL` takes for `row`, in order."""
    return [_value(row, column) for column in _COLUMNS]


async def insert_or_get(row: dict) -> tuple[OperationRecord, bool]:
    """Inserts the operation (`row`: a `new_row`); if its idempotency key is taken, returns the existing one instead."""
    inserted = await insert_unless_taken(Operation(**row), Operation.idem_key)
    if inserted:
        return record(row), True
    existing = await Operation.select().where(Operation.idem_key == row["idem_key"]).output(load_json=True).first()
    return record(existing), False
