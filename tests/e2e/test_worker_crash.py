"""Invariant 2 across processes: a worker killed mid-batch leaves nothing done twice or undone."""

from __future__ import annotations

import asyncio
import re
import signal
import time

import asyncpg
import pytest
from litestar.testing import TestClient

from runtime.settings import Settings
from tests.api import builders
from tests.e2e.conftest import tenure_env
from tests.e2e.support import (
    accept_purchases,
    assert_each_purchase_done_once,
    balance_held,
    statuses,
    wait_until_finished,
)
from tests.ratelimits import UNLIMITED
from web.app import create_app
from worker.broker import make_broker
from worker.queue import Sender

PURCHASES = 150  # 150 domains at 15.00 stay below tier B: every charge is the full price
PRICE = 1500
FUNDS = 2 * PURCHASES * PRICE
STALL_S = 2
KILL_AFTER = 10  # succeeded operations before the worker is killed


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_worker_killed_mid_batch_leaves_every_purchase_done_exactly_once(database_url, redis_server, processes):
    redis = redis_server()
    settings = Settings(database_url=database_url, broker_url=redis.url, **UNLIMITED)
    env = tenure_env(database_url, redis.url, TENURE_RELAY_STALL_SECONDS=str(STALL_S))
    names = [f"crash-{i:03d}.fr" for i in range(PURCHASES)]

    with TestClient(create_app(settings)) as api:
        owner = builders.person(api)
        org = builders.organization(api, owner)
        builders.fund(api, owner, org, FUNDS)

        first = processes.tenure("worker", "worker", "--processes", "1", "--threads", "8", env=env)
        op_ids = accept_purchases(api, owner, org, names[:KILL_AFTER])
        wait_until_finished(org, KILL_AFTER, timeout=60, alive=lambda: None if first.alive() else first.tail())
        # Then it is killed while it holds work: batches claimed and waiting at the payer's balance
        # row (held by the test), messages taken from Redis and not acknowledged yet.
        with balance_held(database_url, org):
            op_ids += accept_purchases(api, owner, org, names[KILL_AFTER:])
            deadline = time.monotonic() + 30
            while not (statuses(org)["running"] and unacked_messages(redis.client())):
                assert first.alive(), f"the first worker died on its own\n{first.tail()}"
                assert time.monotonic() < deadline, f"never held work: {dict(statuses(org))}\n{first.tail()}"
                time.sleep(0.05)
            time.sleep(0.3)  # its transactions reach the lock
            first.kill(signal.SIGKILL)  # the whole group: main and worker processes
            first.popen.wait(timeout=10)
            time.sleep(0.2)  # the forked worker process dies with it
        at_kill = {"statuses": dict(statuses(org)), "unacked": unacked_messages(redis.client())}
        succeeded = at_kill["statuses"].get("succeeded", 0)
        assert KILL_AFTER <= succeeded < PURCHASES, at_kill
        # What the dead worker held stays in its Redis ack set until its heartbeat times out
        # (60 s, longer than this test): only the relay's stall rule brings those back.
        assert at_kill["unacked"] > 0 or at_kill["statuses"].get("running", 0) > 0, at_kill
        print(f"\nworker killed: {at_kill}")

        second = processes.tenure("worker", "worker", "--processes", "1", "--threads", "8", env=env)
        # The relay as deployed: its own process, stall threshold from TENURE_RELAY_STALL_SECONDS.
        scheduler = processes.tenure("scheduler", "scheduler", env=env)

        def alive() -> str | None:
            dead = [proc.name for proc in (second, scheduler) if not proc.alive()]
            return f"{', '.join(dead)} died\n{processes.tails()}" if dead else None

        try:
            wait_until_finished(org, PURCHASES, timeout=40, alive=alive)
        except AssertionError as failure:
            raise AssertionError(f"{failure}\n{processes.tails()}") from None

        prices = assert_each_purchase_done_once(api, owner, org, op_ids, names, FUNDS)
        assert prices == {PRICE: PURCHASES}


def unacked_messages(client) -> int:
    """Messages a (dead) worker took from Redis and never acknowledged."""
    try:
        return sum(client.scard(key) for key in client.scan_iter("dramatiq:__acks__.*", _type="set"))
    finally:
        client.close()


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_what_a_killed_worker_held_is_counted_orphaned_not_in_flight(database_url, redis_server, processes):
    redis = redis_server()
    settings = Settings(database_url=database_url, broker_url=redis.url, ops_token="ops-secret")
    broker = make_broker(settings)
    broker.heartbeat_timeout = HEARTBEAT_TIMEOUT_MS  # how long a silent worker counts as alive (60 s in production)
    broker.maintenance_chance = 0  # nothing here puts the dead worker's messages back meanwhile
    ops = {"Authorization": "Bearer ops-secret"}
    loop = asyncio.new_event_loop()

    with TestClient(create_app(settings, sender=Sender(broker))) as api:
        owner = builders.person(api)
        org = builders.organization(api, owner)
        builders.fund(api, owner, org, 10 * PRICE)
        accept_purchases(api, owner, org, [f"held-{i}.fr" for i in range(10)])
        # Every operation row locked: the worker takes messages and blocks on them, holding them.
        lock = loop.run_until_complete(asyncpg.connect(database_url))
        loop.run_until_complete(lock.execute("BEGIN; SELECT id FROM operations FOR UPDATE"))
        try:
            worker = processes.tenure(
                "worker", "worker", "--processes", "1", "--threads", "2", env=tenure_env(database_url, redis.url)
            )
            held = wait_for_value(lambda: unacked_messages(redis.client()), worker)
            time.sleep(0.5)  # its prefetch settles
            held = unacked_messages(redis.client())
            before = operations_queue(api, ops)
            worker.kill(signal.SIGKILL)
            worker.popen.wait(timeout=10)
        finally:
            loop.run_until_complete(lock.close())
            loop.close()

        assert before["in_flight"] == held and before["orphaned"] == 0, (before, held)
        after = wait_for_value(lambda: (q := operations_queue(api, ops))["in_flight"] == 0 and q)
        assert after["orphaned"] == held, (after, held)
        assert after["waiting"] == before["waiting"]  # (a message may name several of the 10)
        page = api.get("/ops", headers=ops).text
        assert re.search(
            rf'data-testid="queue-operations-in-flight"\s*>0<.*'
            rf'data-testid="queue-operations-orphaned"\s*>{held}<',
            page,
            re.S,
        )
    broker.close()


HEARTBEAT_TIMEOUT_MS = 3000


def operations_queue(api, headers) -> dict:
    return next(q for q in api.get("/v1/ops/queues", headers=headers).json() if q["queue"] == "operations")


def wait_for_value(check, proc=None, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert proc is None or proc.alive(), proc.tail()
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)
    return value
