"""The P2 baseline: a Dramatiq no-op actor on Redis (`dramatiq bench.noop_actor`).

The broker URL comes from TENURE_BENCH_REDIS_URL; the queue is `NOOP_QUEUE`.
"""

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

NOOP_QUEUE = "noop_bench"

broker = RedisBroker(url=os.environ.get("TENURE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"))
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=NOOP_QUEUE, broker=broker)
def noop(n: str) -> None:
    pass
