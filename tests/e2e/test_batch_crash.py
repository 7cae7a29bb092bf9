"""Invariant 2 for batch execution: a worker killed while it holds a claimed batch of
operations (earlier ones done, the batch marked running by its claim and written but not
committed) leaves each done exactly once.

The kill lands at a known point, not a lucky one: the payer's balance row is held locked by
the test, so the claimed batch's transaction waits there (a batch of purchases on PostgreSQL
is written by one statement, and would otherwise finish between two polls)."""

from __future__ import annotations

import signal
import time

import pytest
from litestar.testing import TestClient

from runtime.settings import Settings
from tables.operations import Operation
from tests.api import builders
from tests.e2e.conftest import tenure_env
from tests.e2e.support import (
    accept_purchases,
    assert_each_purchase_done_once,
    balance_held,
    statuses,
    wait_until_finished,
)
from tests.integration.flows import db
from tests.ratelimits import UNLIMITED
from web.app import create_app

PURCHASES = 120  # domains at 15.00 stay below tier B: every charge is the full price
PRICE = 1500
FUNDS = 2 * PURCHASES * PRICE
STALL_S = 2
DONE_FIRST = 5


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_worker_killed_in_the_middle_of_a_claimed_batch_leaves_each_operation_done_once(
    database_url, redis_server, processes
):
    redis = redis_server()
    settings = Settings(database_url=database_url, broker_url=redis.url, **UNLIMITED)
    env = tenure_env(database_url, redis.url, TENURE_RELAY_STALL_SECONDS=str(STALL_S))
    names = [f"batch-crash-{i:03d}.fr" for i in range(PURCHASES)]

    with TestClient(create_app(settings)) as api:
        owner = builders.person(api)
        org = builders.organization(api, owner)
        builders.fund(api, owner, org, FUNDS)
        # Some done first: one worker thread runs the first purchases to their end.
        first = processes.tenure("worker", "worker", "--processes", "1", "--threads", "1", env=env)
        op_ids = accept_purchases(api, owner, org, names[:DONE_FIRST])
        wait_until_finished(org, DONE_FIRST, timeout=60, alive=lambda: None if first.alive() else first.tail())
        # The next batch is claimed (running) and waits at the balance, written but not committed, when it dies.
        with balance_held(database_url, org):
            op_ids += accept_purchases(api, owner, org, names[DONE_FIRST:])
            deadline = time.monotonic() + 60
            while statuses(org)["running"] < 2:
                assert first.alive(), f"the first worker died on its own\n{first.tail()}"
                assert time.monotonic() < deadline, f"never claimed a batch: {dict(statuses(org))}"
                time.sleep(0.05)
            time.sleep(0.3)  # its transaction reaches the lock
            first.kill(signal.SIGKILL)
            first.popen.wait(timeout=10)
        at_kill = statuses(org)
        held = [
            row["id"]
            for row in db(
                Operation.select(Operation.id)
                .where((Operation.organization_id == org) & (Operation.status == "running"))
                .run()
            )
        ]
        print(f"\nworker killed: {dict(at_kill)}")
        assert len(held) >= 2 and at_kill["succeeded"] == DONE_FIRST, dict(at_kill)

        second = processes.tenure("worker", "worker", "--processes", "1", "--threads", "4", env=env)
        scheduler = processes.tenure("scheduler", "scheduler", env=env)  # the relay, stall STALL_S

        def alive() -> str | None:
            dead = [proc.name for proc in (second, scheduler) if not proc.alive()]
            return f"{', '.join(dead)} died\n{processes.tails()}" if dead else None

        try:
            wait_until_finished(org, PURCHASES, timeout=60, alive=alive)
        except AssertionError as failure:
            raise AssertionError(f"{failure}\n{processes.tails()}") from None

        prices = assert_each_purchase_done_once(api, owner, org, op_ids, names, FUNDS)
        assert prices == {PRICE: PURCHASES}
        # What the dead worker held was taken again, once its lease ran out, and finished.
        again = db(Operation.select(Operation.id, Operation.attempts).where(Operation.id.is_in(held)).run())
        assert all(row["attempts"] >= 2 for row in again), again
