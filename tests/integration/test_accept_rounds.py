"""SQLite's accept rounds: the accepts an event loop has waiting are written in one transaction,
in one hop to a thread; a round that fails is written again accept by accept, so that the
failure is only its own request's."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from runtime.clock import clock
from tables import accept_batches, operations
from tables.activity import Actor
from tables.operation_activity import insert_accepted
from tables.operations import Operation
from tests.api import builders
from tests.integration.flows import db


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_accepts_waiting_together_are_written_together_and_one_failing_fails_alone(api, database_url):
    owner, org = builders.funded(api, 10_000)
    rows = [
        operations.new_row("purchase", org, clock.now(), account_id=owner.id, enqueued_at=clock.now(), idem_key=key)
        for key in (f"{org}:round-a", f"{org}:round-b")
    ]
    actor = Actor("account", owner.id, None)
    rounds: list[int] = []
    taken = accept_batches._one_round

    async def counted(items):
        rounds.append(len(items))
        await taken(items)

    def broken(connection: sqlite3.Connection) -> bool:
        connection.execute("INSERT INTO no_such_table VALUES (1)")
        return True

    async def accept_three() -> list:
        return await asyncio.gather(
            insert_accepted(rows[0], actor),
            accept_batches.in_next_round(broken),
            insert_accepted(rows[1], actor),
            return_exceptions=True,
        )

    accept_batches._one_round = counted
    try:
        first, failed, second = db(accept_three())
    finally:
        accept_batches._one_round = taken

    assert (first, second) == (True, True)
    assert isinstance(failed, sqlite3.OperationalError) and "no_such_table" in str(failed)
    assert rounds == [3]  # one round for the three; written again one by one after it failed
    stored = db(Operation.select(Operation.id).where(Operation.id.is_in([r["id"] for r in rows])).run())
    assert sorted(r["id"] for r in stored) == sorted(r["id"] for r in rows)
    assert db(insert_accepted(rows[0], actor)) is False  # its key is taken now: nothing twice
