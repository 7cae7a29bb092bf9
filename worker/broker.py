"""Builds the Dramatiq broker from settings, with tenure's middleware."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO, MiddlewareError, Retries, TimeLimit

from runtime.settings import Settings
from tables import engine

# Retries for transient errors (database or broker hiccups): 1 s doubling to 5 min, 10 times.
MAX_RETRIES = 10
MIN_BACKOFF_MS = 1_000
MAX_BACKOFF_MS = 300_000
TIME_LIMIT_MS = 120_000
REDIS_TIMEOUTS = {"socket_connect_timeout": "1", "socket_timeout": "5"}


def redis_url_with_timeouts(url: str) -> str:
    """redis-py ignores timeout keywords next to url=: they must be in the URL."""
    parsed = urlparse(url)
    query = dict(parse_qsl(parsed.query))
    for key, value in REDIS_TIMEOUTS.items():
        query.setdefault(key, value)
    return urlunparse(parsed._replace(query=urlencode(query)))


class Database(dramatiq.Middleware):
    """Binds the tables and starts this process's pool on the actors' event loop thread."""

    def __init__(self, database_url: str, pool_size: int = 10) -> None:
        self.database_url = database_url
        self.pool_size = pool_size

    def before_worker_boot(self, broker, worker) -> None:
        from dramatiq.asyncio import get_event_loop_thread

        try:
            engine.bind(engine.for_url(self.database_url))
            # Actors leave no session state (advisory locks, LISTEN, SET): no reset per checkout.
            get_event_loop_thread().run_coroutine(engine.start_pool(self.pool_size))
        except Exception as exc:
            # A plain exception here is only logged and the worker boots without a database.
            get_event_loop_thread().stop()
            raise MiddlewareError(f"cannot reach the database: {exc}") from exc

    def after_worker_shutdown(self, broker, worker) -> None:
        from dramatiq.asyncio import get_event_loop_thread

        loop_thread = get_event_loop_thread()
        if loop_thread is not None:
            loop_thread.run_coroutine(engine.close_pool())


def middleware(settings: Settings) -> list[dramatiq.Middleware]:
    return [
        TimeLimit(time_limit=TIME_LIMIT_MS),
        Retries(max_retries=MAX_RETRIES, min_backoff=MIN_BACKOFF_MS, max_backoff=MAX_BACKOFF_MS),
        AsyncIO(),
        Database(settings.database_url),
    ]


def make_broker(settings: Settings) -> dramatiq.Broker:
    """Redis (`redis://`), RabbitMQ (`amqp://`) or, with no URL, the in-process broker."""
    url = settings.broker_url
    if url is None:
        broker = StubBroker(middleware=middleware(settings))
    elif url.startswith(("redis://", "rediss://", "unix://")):
        from dramatiq.brokers.redis import RedisBroker

        from worker.redis_monitor import DeadLetterDetails

        broker = RedisBroker(url=redis_url_with_timeouts(url), middleware=[*middleware(settings), DeadLetterDetails()])
    elif url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url, middleware=middleware(settings))
    else:
        raise ValueError(f"unsupported broker URL {url!r}: use redis://, amqp:// or leave it unset")
    return broker
