"""Reused SQLite connections while a process serves (web, workers, scheduler).

Piccolo's SQLite engine opens a connection (and its aiosqlite thread) for every query
outside a transaction and for every transaction, then closes it. While a pool is started
(`tables.engine.start_pool`, as for PostgreSQL), `SQLitePool` keeps up to MAX_IDLE
connections open instead and hands them out again. A connection goes back only when it
holds no transaction; anything else about it is thrown away, as is every connection once
the last user has closed the pool. Without a started pool (migrations, scripts, tests
reading the database) nothing changes.

The idle connections' threads are daemons: a process that exits without closing its
pool does not hang on them (an idle SQLite connection holds nothing to lose).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import aiosqlite
from piccolo.engine.sqlite import dict_factory

MAX_IDLE = 8


class SQLitePool:
    def __init__(self, connection_kwargs: dict) -> None:
        self._kwargs = connection_kwargs
        self._idle: list[aiosqlite.Connection] = []
        self._users = 0
        self._lock = threading.Lock()  # web and embedded workers run on different threads

    @property
    def serving(self) -> bool:
        return self._users > 0

    def open(self) -> None:
        with self._lock:
            self._users += 1

    async def close(self) -> None:
        with self._lock:
            self._users = max(0, self._users - 1)
            idle, self._idle = (self._idle, []) if self._users == 0 else ([], self._idle)
        for connection in idle:
            await connection.close()

    async def acquire(self) -> aiosqlite.Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        connection = aiosqlite.connect(**self._kwargs)
        connection._thread.daemon = True  # aiosqlite 0.22: its worker thread, not yet started
        await connection
        connection.row_factory = dict_factory
        await connection.execute("PRAGMA foreign_keys = 1")
        return connection

    async def release(self, connection: aiosqlite.Connection, *, broken: bool = False) -> None:
        keep = not broken and connection._running and not connection.in_transaction
        if keep:
            with self._lock:
                keep = self._users > 0 and len(self._idle) < MAX_IDLE
                if keep:
                    self._idle.append(connection)
        if not keep:
            await connection.close()


class PooledConnection:
    """What a transaction holds: the connection, given back to the pool when it "closes"."""

    __slots__ = ("_connection", "_pool", "_released")

    def __init__(self, connection: aiosqlite.Connection, pool: SQLitePool) -> None:
        object.__setattr__(self, "_connection", connection)
        object.__setattr__(self, "_pool", pool)
        object.__setattr__(self, "_released", False)

    def __getattr__(self, name: str):
        return getattr(self._connection, name)

    def __setattr__(self, name: str, value) -> None:
        setattr(self._connection, name, value)

    async def close(self) -> None:
        if not self._released:
            object.__setattr__(self, "_released", True)
            await self._pool.release(self._connection)


# --- one writer at a time in this process ----------------------------------------------------

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def is_write(query: str) -> bool:
    return query.lstrip()[:7].upper().startswith(WRITES)


class WriteLock:
    """Serialises this process's writers (the web and the embedded workers) before SQLite
    does: a writer that finds the database locked sleeps in SQLite's busy handler (up to
    100 ms a turn), one that waits here is woken as soon as the lock is free. The lock is
    taken on the connection's own thread, so the event loop never blocks on it."""

    def __init__(self, timeout_s: float) -> None:
        self._lock = threading.Lock()
        self._timeout_s = timeout_s

    async def acquire(self, connection: aiosqlite.Connection) -> None:
        taken = {"held": False, "handed": False}

        def take() -> None:
            if not self._lock.acquire(timeout=self._timeout_s):
                raise sqlite3.OperationalError("database is locked")
            taken["held"] = True

        def give_back_if_left() -> None:  # runs after `take` on the same thread
            if taken["held"] and not taken["handed"]:
                self._lock.release()

        try:
            await connection._execute(take)
        except BaseException:
            if not taken["held"]:
                # cancelled while waiting: the thread may still take it; give it back then
                asyncio.ensure_future(connection._execute(give_back_if_left))
            elif not taken["handed"]:
                self._lock.release()
            raise
        taken["handed"] = True

    def release(self) -> None:
        self._lock.release()
