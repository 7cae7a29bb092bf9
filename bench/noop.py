"""P2's baseline: a Dramatiq actor that does nothing but count, on the benchmark's Redis.

BENCH_REDIS_URL=redis://... python -m dramatiq bench.noop --processes 1 --threads 8
"""

from __future__ import annotations

import os

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
COUNTER = "bench:noop:done"
broker = RedisBroker(url=URL)
dramatiq.set_broker(broker)
_counter = redis.Redis.from_url(URL)


@dramatiq.actor(queue_name="noop", max_retries=0)
def noop(n: int) -> None:
    _counter.incr(COUNTER)
