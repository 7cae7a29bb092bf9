"""The same actors on RabbitMQ (`amqp://`), with queue monitoring for it."""

from __future__ import annotations

import os
import time

import dramatiq
import pytest
from dramatiq import Message

from runtime.settings import Settings
from tests.api import builders
from tests.integration.flows import buy, charges_for, wait_done
from tests.ratelimits import UNLIMITED
from worker.actors import declare
from worker.broker import make_broker
from worker.monitoring import monitor_for
from worker.queue import QUEUES, Sender

# One RabbitMQ vhost for the whole run: its tests purge and fill the same queues. scripts/test
# runs them on their own, in one process, after the rest (marker `rabbitmq`).
pytestmark = [pytest.mark.rabbitmq, pytest.mark.xdist_group("rabbitmq")]

RABBITMQ_URL = os.environ.get("TENURE_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


@pytest.fixture
def rabbit(database_url):
    settings = Settings(database_url=database_url, broker_url=RABBITMQ_URL, **UNLIMITED)
    broker = make_broker(settings)
    sender = Sender(broker)
    declare(broker, sender, settings)
    try:
        for queue in QUEUES:
            broker.declare_queue(queue, ensure=True)
            for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
                broker.channel.queue_purge(name)
    except Exception as exc:
        raise RuntimeError(f"RabbitMQ is not reachable at {RABBITMQ_URL}: {exc}") from exc
    yield settings, broker, sender
    broker.close()


@pytest.fixture
def rabbit_api(rabbit):
    from litestar.testing import TestClient

    from web.app import create_app

    settings, _, sender = rabbit
    with TestClient(create_app(settings, sender=sender)) as client:
        yield client


def test_purchases_run_on_rabbitmq(rabbit, rabbit_api):
    _, broker, _ = rabbit
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        owner, org = builders.funded(rabbit_api, 10_000)
        op = wait_done(rabbit_api, owner, buy(rabbit_api, owner, org, "lapin.fr").json()["id"])
    finally:
        worker.stop()

    assert op["status"] == "succeeded"
    assert charges_for(org) == [1500]


def waiting(monitor, queue: str, expected: int, timeout: float = 10) -> int:
    """The queue's waiting count once it is `expected`, or as it is after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        count = {d.queue: d for d in monitor.depths()}[queue].waiting
        if count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.1)


def test_rabbitmq_queue_depths_and_dead_letters(rabbit):
    _, broker, _ = rabbit
    monitor = monitor_for(broker)
    for n in range(2):
        broker.enqueue(
            Message(queue_name="webhooks", actor_name="webhooks.deliver", args=(f"dlv_{n}",), kwargs={}, options={})
        )
    broker.enqueue(
        Message(queue_name="operations", actor_name="purchases.execute", args=(), kwargs={}, options={"max_retries": 0})
    )
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100, queues={"operations"})
    worker.start()
    try:
        deadline = time.monotonic() + 15
        while not monitor.dead_letters() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker.stop()

    # A count read just after a publish, or while a stopped worker's consumer is still closing
    # (its unacknowledged messages come back then), may lag: each is read until it holds.
    assert waiting(monitor, "webhooks", 2) == 2
    letters = monitor.dead_letters()
    assert {d.queue: d for d in monitor.depths()}["operations"].dead_letters == 1
    assert [(d.actor, d.queue) for d in letters] == [("purchases.execute", "operations")]

    assert monitor.requeue(letters[0].message_id)
    assert monitor_for(broker).dead_letters() == []
    assert waiting(monitor, "operations", 1) == 1
