"""Hot statements written once, as SQL, instead of being built by Piccolo on every call.

A `Statement` is SQL with `{}` placeholders (Piccolo's notation). Outside a transaction on
PostgreSQL it runs straight on a pooled asyncpg connection with `$n` placeholders, so
asyncpg prepares it once per connection and reuses the plan; inside a transaction, and on
SQLite, it runs through the engine (Piccolo's `raw`), on the transaction's connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from piccolo.engine.postgres import PostgresEngine
from piccolo.querystring import QueryString

from tables.engine import current


@dataclass(frozen=True)
class Statement:
    sql: str
    numbered: str = field(init=False)  # PostgreSQL's $1, $2 ...
    qmarked: str = field(init=False)  # sqlite3's ? (tables.sqlite_engine.write_in_one_hop)

    def __post_init__(self) -> None:
        parts = self.sql.split("{}")
        numbered = parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))
        object.__setattr__(self, "numbered", numbered)
        object.__setattr__(self, "qmarked", "?".join(parts))


async def fetch(statement: Statement, *args) -> list[dict]:
    """The rows `statement` answers (as dicts), run as described in the module."""
    engine = current()
    if isinstance(engine, PostgresEngine) and engine.current_transaction.get() is None:
        pool = engine.pool
        if pool is not None:
            async with pool.acquire() as connection:
                return [dict(record) for record in await connection.fetch(statement.numbered, *args)]
    return await engine.run_querystring(QueryString(statement.sql, *args))
