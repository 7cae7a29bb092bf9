"""The SQLite engine of the embedded mode: every write, in a transaction or not, queues at the
process's write gate (tables/write_gate.py), and statements in a transaction go straight to it.

A write transaction waits its turn at the gate before `BEGIN IMMEDIATE` and hands it on once
it has ended. A statement that writes outside a transaction (an autocommit UPDATE, INSERT or
DELETE: a worker's claim, a fan-out's mark) waits its turn too. Left to SQLite's busy
handler, it lost the lock to the web's accept rounds, which follow one another without a gap
under load: the in-process workers then ran a few batches a second while the web accepted
hundreds (the backlog at the end of a 10 s load was nearly all of it; with the gate, ~1 %).

Piccolo also sends `PRAGMA foreign_keys = 1` before every statement run inside a
transaction: one more hop to the connection's thread each time, and a no-op there (SQLite
ignores that pragma inside a transaction; the connection was opened with it on). Here a
statement in a transaction runs alone.

Piccolo has no hook for either, so the methods that run statements are overridden here,
keeping their behaviour otherwise (a new connection per statement outside a transaction, the
statement, COMMIT, then the rows).
"""

from __future__ import annotations

import re
from typing import Any

import aiosqlite
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType, dict_factory

from tables import write_gate

_READ = re.compile(r"\s*(SELECT|PRAGMA)\b", re.IGNORECASE)


class GatedTransaction(SQLiteTransaction):
    """A write transaction waits its turn at the write gate before BEGIN IMMEDIATE and hands it
    on once it has ended; its connection is closed when BEGIN fails (Piccolo leaks it and its
    thread)."""

    _gated = False

    async def begin(self) -> None:
        if self.transaction_type is not TransactionType.deferred:
            self._gated = await write_gate.gate.acquire()
        try:
            await super().begin()
        except BaseException:
            self._open_gate()
            await self.connection.close()
            raise

    async def __aexit__(self, exception_type, exception, traceback) -> bool:
        try:
            return await super().__aexit__(exception_type, exception, traceback)
        finally:
            self._open_gate()

    def _open_gate(self) -> None:
        if self._gated:
            self._gated = False
            write_gate.gate.release()


class TenureSQLiteEngine(SQLiteEngine):
    def transaction(self, transaction_type=TransactionType.immediate, allow_nested=True):
        return GatedTransaction(engine=self, transaction_type=transaction_type, allow_nested=allow_nested)

    async def _run_in_new_connection(
        self, query: str, args: list[Any] | None = None, query_type: str = "generic", table=None
    ):
        gated = False if query_type == "select" or _READ.match(query) else await write_gate.gate.acquire()
        try:
            async with aiosqlite.connect(**self.connection_kwargs) as connection:
                await connection.execute("PRAGMA foreign_keys = 1")
                connection.row_factory = dict_factory  # type: ignore[assignment]
                async with connection.execute(query, args or []) as cursor:
                    await connection.commit()
                    return await cursor.fetchall()
        finally:
            if gated:
                write_gate.gate.release()

    async def _run_in_existing_connection(
        self, connection, query: str, args: list[Any] | None = None, query_type: str = "generic", table=None
    ):
        async with connection.execute(query, args or []) as cursor:
            return await cursor.fetchall()
