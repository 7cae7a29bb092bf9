"""The SQLite engine of the embedded mode: write transactions that queue at the process's
write gate, and connections kept open between queries.

Piccolo's SQLite engine opens a new connection (a thread, the file, its schema parsed again)
for every query run outside a transaction and for every transaction, and closes it after:
about 0.75 ms each here, more than the statement. It also sends `PRAGMA foreign_keys = 1`
before every statement run inside a transaction (one more hop to the connection's thread,
and a no-op there: SQLite ignores that pragma inside a transaction). This engine instead
keeps up to IDLE idle connections per process (a forked process never touches its parent's),
each made once with foreign keys on, hands one to one caller at a time (from any thread or
event loop: an aiosqlite connection answers each call on its caller's loop), and takes it
back after a query or a transaction ended cleanly. A connection whose query or transaction
failed half-way (an error during COMMIT or ROLLBACK, a cancelled statement) is closed, not
kept. The threads of kept connections are daemon threads, so an idle one never holds the
process at exit; `close_idle()` closes them at shutdown (`tables.engine.close_pool`) and, at
the latest, when the interpreter exits (the last connection to close folds the WAL back into
the database file, as SQLite does).

A statement that writes outside a transaction (an autocommit UPDATE, INSERT or DELETE: a
claim, a fan-out's mark) waits its turn at the write gate too, as a transaction does. Left
to SQLite's busy handler, it lost the lock to the web's accept rounds, which follow one
another without a gap under load: the in-process workers ran a few batches a second while
the web accepted hundreds (the backlog at the end of a 10 s load was the whole of it; with
the gate it is about 1 %).

Piccolo has no hook for this, so the two methods that open and use connections are
overridden here, keeping their behaviour (the statement, COMMIT, then the rows).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import re
import weakref
from typing import Any

import aiosqlite
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType, dict_factory

from tables import write_gate

IDLE = 8
_READ = re.compile(r"\s*(SELECT|PRAGMA)\b", re.IGNORECASE)


class GatedTransaction(SQLiteTransaction):
    """A write transaction waits its turn at the process's write gate (tables/write_gate.py)
    before BEGIN IMMEDIATE and hands it on once it has ended; its connection is a kept one,
    given back when it ended cleanly, closed otherwise (Piccolo leaks it when BEGIN fails)."""

    _gated = False
    engine: TenureSQLiteEngine

    async def get_connection(self):
        return await self.engine.take()

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
        if self._parent:
            return exception is None
        clean = False
        try:
            if exception:
                if not self._rolled_back:
                    await self.rollback()
            elif not self._committed and not self._rolled_back:
                await self.commit()
            clean = exception is None or not isinstance(exception, asyncio.CancelledError)
        finally:
            self.engine.current_transaction.reset(self.context)
            self._open_gate()
            if clean:
                self.engine.give_back(self.connection)
            else:
                await self.connection.close()
        return exception is None

    def _open_gate(self) -> None:
        if self._gated:
            self._gated = False
            write_gate.gate.release()


class TenureSQLiteEngine(SQLiteEngine):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._idle: dict[int, list[aiosqlite.Connection]] = {}
        _ENGINES.add(self)

    def transaction(self, transaction_type=TransactionType.immediate, allow_nested=True):
        return GatedTransaction(engine=self, transaction_type=transaction_type, allow_nested=allow_nested)

    async def take(self) -> aiosqlite.Connection:
        """An idle connection of this process, or a new one."""
        idle = self._idle.get(os.getpid())
        if idle:
            return idle.pop()
        connection = aiosqlite.connect(**self.connection_kwargs)
        connection._thread.daemon = True  # not started yet: see the module
        await connection
        connection.row_factory = dict_factory  # type: ignore[assignment]
        await connection.execute("PRAGMA foreign_keys = 1")
        return connection

    def give_back(self, connection: aiosqlite.Connection) -> None:
        idle = self._idle.setdefault(os.getpid(), [])
        if len(idle) < IDLE:
            idle.append(connection)
        else:
            asyncio.get_running_loop().create_task(connection.close())

    async def close_idle(self) -> None:
        """Closes this process's idle connections (at shutdown; the last one to close folds the
        WAL back into the database file)."""
        idle = self._idle.pop(os.getpid(), [])
        while idle:
            await idle.pop().close()


_ENGINES: weakref.WeakSet[TenureSQLiteEngine] = weakref.WeakSet()


@atexit.register
def _close_all_idle() -> None:
    """At exit, what a process left idle is closed (its own event loop: the process's are gone)."""
    engines = [engine for engine in _ENGINES if engine._idle.get(os.getpid())]
    if engines:

        async def close() -> None:
            for engine in engines:
                await engine.close_idle()

        asyncio.run(close())

    async def get_connection(self) -> aiosqlite.Connection:
        return await self.take()

    async def _run_in_new_connection(
        self, query: str, args: list[Any] | None = None, query_type: str = "generic", table=None
    ):
        gated = False if query_type == "select" or _READ.match(query) else await write_gate.gate.acquire()
        try:
            connection = await self.take()
            try:
                async with connection.execute(query, args or []) as cursor:
                    await connection.commit()
                    rows = await cursor.fetchall()
            except BaseException:
                await connection.close()
                raise
        finally:
            if gated:
                write_gate.gate.release()
        self.give_back(connection)
        return rows

    async def _run_in_existing_connection(
        self, connection, query: str, args: list[Any] | None = None, query_type: str = "generic", table=None
    ):
        async with connection.execute(query, args or []) as cursor:
            return await cursor.fetchall()
