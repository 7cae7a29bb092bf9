"""Builds the Piccolo engine from a database URL and binds tenure's tables to it.

Two traps of the stack are handled here, once:
- asyncpg pools belong to the event loop that made them, and the embedded mode
  runs the web and the workers on different loops: `LoopPoolPostgresEngine`
  keeps one pool per running loop.
- SQLite has no row locks and upgrading a read lock to a write lock ignores the
  busy timeout, so every write transaction on SQLite is `BEGIN IMMEDIATE`.

asyncpg resets a connection's session each time it goes back to its pool (advisory
locks, cursors, LISTEN, settings: four statements in one round trip), and Piccolo takes
a connection from the pool for every query. tenure sets no session state, takes no
advisory lock and listens to nothing, so the pools skip that reset (`_keep_session`);
asyncpg still rolls back a transaction left open before the connection is reused.

And one of PostgreSQL's: asyncpg waits 60 s for a connection and forever for a
statement by default, so a database that stops answering would hold every request.
Connections here give up after CONNECT_TIMEOUT_S and the pools' statements after
COMMAND_TIMEOUT_S; `unreachable(exc)` tells such failures from a bad query.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlparse

from piccolo.columns import Column
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine
from piccolo.table import Table

from tables.sqlite_engine import TenureSQLiteEngine

SQLITE_BUSY_TIMEOUT_S = 30
# A reachable PostgreSQL accepts a connection in milliseconds; a stopped one refuses it at once.
CONNECT_TIMEOUT_S = 2.0
# Per statement, on the pools of web, workers and scheduler (not `tenure migrate`'s connection).
COMMAND_TIMEOUT_S = 15.0


class LoopPoolPostgresEngine(PostgresEngine):
    """A PostgresEngine whose `pool` is looked up by the running event loop."""

    def __init__(self, *args, **kwargs) -> None:
        self._pools: dict[int, object] = {}
        super().__init__(*args, **kwargs)

    @property  # type: ignore[override]
    def pool(self):
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        return self._pools.get(id(loop))

    @pool.setter
    def pool(self, value) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # the base __init__ sets None outside any loop
        if value is None:
            self._pools.pop(id(loop), None)
        else:
            self._pools[id(loop)] = value


def sqlite_path(url: str) -> str:
    parsed = urlparse(url)
    path = (parsed.netloc + parsed.path) if parsed.netloc else parsed.path
    if url.startswith("sqlite:////"):
        return parsed.path  # absolute: sqlite:////var/lib/tenure.db
    return path.lstrip("/") or "tenure.sqlite3"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:"):
        path = sqlite_path(url)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path) as raw:  # WAL sticks to the file
            raw.execute("PRAGMA journal_mode=WAL")
        return TenureSQLiteEngine(path=path, timeout=SQLITE_BUSY_TIMEOUT_S)
    if url.startswith(("postgresql:", "postgres:")):
        return LoopPoolPostgresEngine(config={"dsn": url, "timeout": CONNECT_TIMEOUT_S})
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://...")


_current: Engine | None = None
_by_url: dict[str, Engine] = {}


def for_url(url: str) -> Engine:
    """One engine per database URL per process (engines are cheap to keep, slow to make)."""
    if url not in _by_url:
        _by_url[url] = make_engine(url)
    return _by_url[url]


def bind(engine: Engine) -> None:
    """Points every tenure table at `engine`."""
    global _current
    from tables.registry import TABLES

    for table in TABLES:
        table._meta.db = engine
    _current = engine


def current() -> Engine:
    if _current is None:
        raise RuntimeError("no database bound: call tables.engine.bind(make_engine(url)) first")
    return _current


async def insert_unless_taken(row: Table, unique: Column) -> bool:
    """Inserts `row` unless a row with the same `unique` value is there (then nothing changes):
    True if it went in. One statement, so concurrent inserts of the same value cannot both win."""
    table = type(row)
    done = await table.insert(row).on_conflict(target=unique, action="DO NOTHING").returning(table._meta.primary_key)
    return bool(done)


def locked(query):
    """`query` (a select) taking its rows' locks until commit (`FOR UPDATE`) on PostgreSQL; on
    SQLite as it is, the IMMEDIATE transaction serialising writers already."""
    return query if is_sqlite() else query.lock_rows()


def is_sqlite() -> bool:
    return isinstance(current(), SQLiteEngine)


@asynccontextmanager
async def transaction() -> AsyncIterator[None]:
    """A write transaction: IMMEDIATE on SQLite, plain on PostgreSQL (lock rows there)."""
    async with current().transaction():
        yield


@asynccontextmanager
async def atomic() -> AsyncIterator[None]:
    """A unit of work undone alone when it raises: its own transaction, or, inside one already
    open (a batch of operations), a savepoint, so that the rest of the outer transaction goes on.

    The savepoint is rolled back to when the block raises and otherwise left as it is: it ends
    with the transaction, which spares a RELEASE round trip per block (a batch keeps a few
    dozen at most, far below PostgreSQL's 64 cached subtransactions per transaction)."""
    outer = current().current_transaction.get()
    if outer is None:
        async with transaction():
            yield
        return
    point = await outer.savepoint()
    try:
        yield
    except BaseException:
        await point.rollback_to()
        raise


async def start_pool(max_size: int = 10, *, reset_sessions: bool = False) -> None:
    """A pool for this event loop. A pool outlives database outages: asyncpg replaces a
    connection found closed when it is next acquired.

    By default (`reset_sessions=False`) the pool skips asyncpg's reset query on every
    release (`pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`, one round trip
    per checkout): tenure leaves no session state behind (no advisory locks, LISTEN, cursors
    or session SETs); a transaction left open is still rolled back."""
    engine = current()
    if isinstance(engine, PostgresEngine) and engine.pool is None:
        options = {} if reset_sessions else {"reset": _keep_session}
        await engine.start_connection_pool(min_size=1, max_size=max_size, command_timeout=COMMAND_TIMEOUT_S, **options)


async def _keep_session(connection) -> None:
    """The pools' reset: nothing beyond asyncpg's own rollback of an unfinished transaction."""


def unreachable(exc: BaseException) -> bool:
    """Did `exc` (or what raised it) come from the database being down or unreachable,
    rather than from the query? (Connection refused, reset, timed out or closed; the server
    shutting down or starting up; a socket that could not be opened, e.g. no local port left.)

    Any `OSError` or asyncpg `InterfaceError` raised inside the driver counts: under load a
    reconnect can fail with EADDRNOTAVAIL or an SSL handshake cut short, neither of which is a
    `ConnectionError`."""
    import asyncpg

    lost = (
        ConnectionError,
        TimeoutError,
        socket.gaierror,
        asyncpg.PostgresConnectionError,
        asyncpg.CannotConnectNowError,
        asyncpg.AdminShutdownError,
        asyncpg.CrashShutdownError,
        asyncpg.TooManyConnectionsError,
    )
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, lost):
            return True
        if isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc):
            return True  # "connection is closed", "pool is closed"
        # InternalClientError: a connection whose last operation the lost server cut short, used
        # again ("cannot switch to state 12; another operation (2) is in progress").
        if isinstance(
            exc, (OSError, EOFError, asyncpg.InterfaceError, asyncpg.InternalClientError)
        ) and _raised_in_driver(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _raised_in_driver(exc: BaseException) -> bool:
    trace = exc.__traceback__
    while trace is not None:
        name = trace.tb_frame.f_code.co_filename
        if f"{os.sep}asyncpg{os.sep}" in name:
            return True
        trace = trace.tb_next
    return False


async def close_pool() -> None:
    engine = current()
    if isinstance(engine, PostgresEngine) and engine.pool is not None:
        await engine.close_connection_pool()
