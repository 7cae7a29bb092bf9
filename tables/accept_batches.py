"""SQLite: accepted operations recorded together, in one write transaction (a group commit).

On SQLite every write transaction takes the database's one write lock in turn
(tables/write_gate.py), and each costs a connection, BEGIN IMMEDIATE, its statements and a
COMMIT that flushes the WAL to disk. Under load, requests accepting an operation one
transaction each spent most of the lock's time on that per-transaction cost and queued
behind one another and the workers' batches until clients gave up.

Here the accepts a process's event loop has waiting are written by one task in one
transaction: the first request to arrive starts a round, those arriving while a round runs
join the next one (up to MAX_ROUND). Each operation keeps its own statements and outcome
(inserted, or not: its idempotency key or name taken); each request is answered once the
transaction holding its rows has committed, so a 202 still means the operation is stored.
Should the round's transaction fail, nothing of it is kept and each of its accepts runs
again alone, in its own transaction, as before, so that one accept's error is its own.
A request cancelled before its round starts is left out of it.

A round's statements need nothing from the event loop between them, so the whole transaction
runs in one hop to a thread (`tables.sqlite_engine.write_in_one_hop`: the accepts' statements
are sqlite3 calls there), holding the write lock for its statements only, not for the ~2 hops
per accept back to a busy event loop that an async transaction waited on.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from piccolo.engine.sqlite import SQLiteEngine

from tables.engine import current
from tables.sqlite_engine import write_in_one_hop

MAX_ROUND = 64

# An accept's statements, run in the round's transaction on its connection, in the round's thread.
Write = Callable[[sqlite3.Connection], bool]


@dataclass
class _Waiting:
    write: Write
    answer: asyncio.Future


class AcceptRounds:
    """One per event loop: the accepts waiting for the next round, and the task writing them."""

    def __init__(self) -> None:
        self._waiting: list[_Waiting] = []
        self._task: asyncio.Task | None = None

    async def run(self, write: Write) -> bool:
        answer = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(write, answer))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._rounds(), name="tenure-accept-rounds")
        return await answer

    async def _rounds(self) -> None:
        while self._waiting:
            taken, self._waiting = self._waiting[:MAX_ROUND], self._waiting[MAX_ROUND:]
            taken = [item for item in taken if not item.answer.done()]  # cancelled meanwhile
            if not taken:
                continue
            try:
                await _one_round(taken)
            except BaseException:  # the loop is closing: no answer will come
                for item in taken:
                    item.answer.cancel()
                raise


async def _one_round(taken: list[_Waiting]) -> None:
    engine = current()
    assert isinstance(engine, SQLiteEngine)  # rounds are SQLite's (tables.operation_activity)
    try:
        outcomes = await write_in_one_hop(engine, lambda connection: [item.write(connection) for item in taken])
    except Exception:  # each alone, so that the failure is only its own request's
        for item in taken:
            try:
                outcome = await write_in_one_hop(engine, item.write)
            except Exception as exc:
                if not item.answer.done():
                    item.answer.set_exception(exc)
            else:
                if not item.answer.done():
                    item.answer.set_result(outcome)
        return
    for item, outcome in zip(taken, outcomes, strict=True):
        if not item.answer.done():
            item.answer.set_result(outcome)


_by_loop: dict[int, AcceptRounds] = {}


async def in_next_round(write: Write) -> bool:
    """Runs `write` in the next round's transaction of this event loop; answers what it answered."""
    loop = asyncio.get_running_loop()
    rounds = _by_loop.get(id(loop))
    if rounds is None or rounds._task is not None and rounds._task.get_loop() is not loop:
        rounds = _by_loop[id(loop)] = AcceptRounds()
    return await rounds.run(write)
