"""Integration fixtures: the real app, a real Redis broker and real Dramatiq workers in-process."""

from __future__ import annotations

import dramatiq
import pytest
import redis
from litestar.testing import TestClient

from runtime.settings import Settings
from tests.databases import REDIS_URL
from tests.integration.receiver import Receiver
from tests.ratelimits import UNLIMITED
from web.app import create_app
from worker.actors import declare
from worker.broker import make_broker
from worker.queue import Sender


@pytest.fixture
def redis_url():
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        raise RuntimeError(f"Redis is not reachable at {REDIS_URL}: {exc}") from exc
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def settings(database_url, redis_url):
    return Settings(
        database_url=database_url,
        broker_url=redis_url,
        ops_token="ops-secret",
        relay_stall_seconds=2,
        allow_private_webhook_urls=True,
        **UNLIMITED,
    )


@pytest.fixture
def broker(settings):
    broker = make_broker(settings)
    yield broker
    broker.close()


@pytest.fixture
def sender(broker, settings):
    """The sender the app and the actors share; declaring the actors needs it."""
    sender = Sender(broker)
    declare(broker, sender, settings)
    return sender


@pytest.fixture
def workers(broker, sender):
    """Four worker threads consuming the real broker, started on demand."""
    started: list[dramatiq.Worker] = []

    def start(threads: int = 4) -> dramatiq.Worker:
        worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def api(settings, sender):
    with TestClient(create_app(settings, sender=sender)) as client:
        yield client


@pytest.fixture
def receiver():
    """A local webhook receiver (tests/integration/receiver.py), its address in `.base`."""
    receiver = Receiver()
    receiver.base = receiver.start()
    yield receiver
    receiver.stop()
