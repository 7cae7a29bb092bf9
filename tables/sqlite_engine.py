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

The gate is held as briefly as the write allows: a transaction hands it on once it has
committed or rolled back, before its connection (and that connection's thread) is closed; a
statement outside a transaction runs in ONE hop to a thread of its own (connect, execute,
read the rows, COMMIT, hand the gate on, close) instead of aiosqlite's one hop per step. Each
hop back to an event loop waits for that loop to be free, which under load took ~5 ms: a
worker's one-row claim held the gate ~15 ms through three of them (measured with the demo
under 32 connections), as long as a whole batch of twenty purchases.

Piccolo has no hook for any of this, so the methods that run statements are overridden here,
keeping their behaviour otherwise (a new connection per statement outside a transaction, the
statement, COMMIT, then the rows).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType, dict_factory

from tables import write_gate

_READ = re.compile(r"\s*(SELECT|PRAGMA)\b", re.IGNORECASE)
# Threads for the statements run outside a transaction (one hop each; see the module). A
# statement waiting on another process's lock (SQLite's busy timeout) holds one.
T = TypeVar("T")
_STATEMENTS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="tenure-sqlite")


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
        """Piccolo's, with the gate opened as soon as the transaction has ended, before its
        connection (and the connection's thread) is closed."""
        if self._parent:
            return exception is None
        try:
            if exception:
                if not self._rolled_back:
                    await self.rollback()
            elif not self._committed and not self._rolled_back:
                await self.commit()
        finally:
            self._open_gate()
            await self.connection.close()
            self.engine.current_transaction.reset(self.context)
        return exception is None

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
        def statement(connection: sqlite3.Connection) -> list[dict]:
            # Autocommit: a statement that returns rows ends (and commits) once they are read.
            rows = connection.execute(query, args or []).fetchall()
            connection.commit()
            return rows

        gated = False if query_type == "select" or _READ.match(query) else await write_gate.gate.acquire()
        return await _in_one_hop(self.connection_kwargs, statement, gated)

    async def _run_in_existing_connection(
        self, connection, query: str, args: list[Any] | None = None, query_type: str = "generic", table=None
    ):
        async with connection.execute(query, args or []) as cursor:
            return await cursor.fetchall()


async def write_in_one_hop(engine: SQLiteEngine, work: Callable[[sqlite3.Connection], T]) -> T:
    """A write transaction whose statements need nothing from the event loop between them
    (`work`, run with the connection in a thread: sqlite3 calls, ? placeholders), run whole in
    one hop: at its turn at the gate, connect, BEGIN IMMEDIATE, `work`, COMMIT (ROLLBACK if
    it raised), the gate handed on, close. Answers what `work` answered."""

    def transaction(connection: sqlite3.Connection) -> T:
        connection.execute("BEGIN IMMEDIATE")
        try:
            answer = work(connection)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return answer

    return await _in_one_hop(engine.connection_kwargs, transaction, await write_gate.gate.acquire())


async def _in_one_hop(connection_kwargs: dict, body: Callable[[sqlite3.Connection], T], gated: bool) -> T:
    """`body` on a connection of its own, in one hop to a thread; the gate (if `gated`: held)
    handed on there as soon as `body` has ended, whatever happened, before the connection
    closes. Shielded: a caller cancelled meanwhile leaves it to end (and hand the gate on)."""
    try:
        running = asyncio.get_running_loop().run_in_executor(_STATEMENTS, _alone, connection_kwargs, body, gated)
    except BaseException:
        if gated:
            write_gate.gate.release()
        raise
    return await asyncio.shield(running)


def _alone(connection_kwargs: dict, body: Callable[[sqlite3.Connection], T], gated: bool) -> T:
    try:
        connection = sqlite3.connect(**connection_kwargs, check_same_thread=False)
    except BaseException:
        if gated:
            write_gate.gate.release()
        raise
    try:
        try:
            connection.row_factory = dict_factory
            connection.execute("PRAGMA foreign_keys = 1")
            answer = body(connection)
        finally:
            if gated:
                write_gate.gate.release()
        return answer
    finally:
        connection.close()
