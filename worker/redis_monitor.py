"""The Redis broker's queues, read directly (Dramatiq has no queue-depth API): the keys
`dramatiq:<queue>`, `.DQ`, `.XQ` and the ack sets; and the middleware that keeps with a dead
letter why it died.

A message a worker took and has not acknowledged is in that worker's ack set
(`dramatiq:__acks__.<worker id>.<queue>`); each worker's last contact is its score in
`dramatiq:__heartbeats__`. A worker silent for longer than the broker's heartbeat timeout
(60 s) is dead to Dramatiq too: what it held is `orphaned`, not `in_flight`, until
Dramatiq's maintenance puts it back on its queue (or the relay sent it again).
"""

from __future__ import annotations

import json
import time

import dramatiq
import structlog
from dramatiq.common import dq_name, q_name

from worker.monitor_records import DeadLetter, QueueDepth, dead_letter, fresh_message
from worker.queue import QUEUES

log = structlog.get_logger("tenure.monitoring")


# Writes a dead letter's body again, only if it is still there (a requeue may have taken it).
_REWRITE_DEAD_LETTER = """
if redis.call("hexists", KEYS[1], ARGV[1]) == 1 then
    redis.call("hset", KEYS[1], ARGV[1], ARGV[2])
end
"""


class DeadLetterDetails(dramatiq.Middleware):
    """Keeps, with a Redis dead letter, why it died.

    Dramatiq's Redis broker moves a failed message's body to `<queue>.XQ.msgs` as it was
    first sent; the exception's traceback and the retry count that the Retries middleware
    put in its options stay in the worker's memory. After the nack this writes the message
    as it died (those options included) over the body, so the dead-letter views show them.
    """

    def after_nack(self, broker, message) -> None:
        if type(broker).__name__ != "RedisBroker":
            return  # the StubBroker keeps the message itself; RabbitMQ's dead letters are as sent
        redis_id = message.options.get("redis_message_id")
        if not redis_id:
            return
        key = f"{broker.namespace}:{q_name(message.queue_name)}.XQ.msgs"
        try:
            broker.client.eval(_REWRITE_DEAD_LETTER, 1, key, redis_id, message.encode())
        except Exception as exc:  # the letter stays, only without its traceback
            log.warning("dead_letter_details_lost", redis_message_id=redis_id, error=str(exc))


class RedisMonitor:
    def __init__(self, broker) -> None:
        self.broker = broker
        self.client = broker.client
        self.ns = broker.namespace

    def _live_workers(self) -> set[str]:
        """Workers that talked to Redis within the broker's heartbeat timeout."""
        since = int(time.time() * 1000) - int(self.broker.heartbeat_timeout)
        return {worker.decode() for worker in self.client.zrangebyscore(f"{self.ns}:__heartbeats__", since, "+inf")}

    def depths(self) -> list[QueueDepth]:
        live = self._live_workers()
        prefix = f"{self.ns}:__acks__."
        result = []
        for queue in QUEUES:
            key = f"{self.ns}:{queue}"
            in_flight = orphaned = 0
            for ack_key in self.client.scan_iter(match=f"{prefix}*.{queue}", count=500):
                worker = ack_key.decode()[len(prefix) : -len(queue) - 1]
                held = self.client.scard(ack_key)
                if worker in live:
                    in_flight += held
                else:
                    orphaned += held
            result.append(
                QueueDepth(
                    queue,
                    waiting=self.client.llen(key),
                    delayed=self.client.llen(f"{self.ns}:{dq_name(queue)}"),
                    in_flight=in_flight,
                    dead_letters=self.client.zcard(f"{key}.XQ"),
                    orphaned=orphaned,
                )
            )
        return result

    def oldest_waiting(self, queue: str) -> float | None:
        """When the message at the head of `queue` was sent (UNIX seconds); None if it is empty."""
        key = f"{self.ns}:{queue}"
        for _ in range(3):  # the head may be taken between the two reads
            head = self.client.lindex(key, 0)
            if head is None:
                return None
            body = self.client.hget(f"{key}.msgs", head)
            if body is not None:
                return json.loads(body)["message_timestamp"] / 1000
        return None

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        letters = []
        for queue in QUEUES:
            xq = f"{self.ns}:{queue}.XQ"
            entries = self.client.zrevrange(xq, 0, limit - 1, withscores=True)
            if not entries:
                continue
            bodies = self.client.hmget(f"{xq}.msgs", [mid for mid, _ in entries])
            for (message_id, score), body in zip(entries, bodies, strict=True):
                if body is not None:
                    letters.append(dead_letter(message_id.decode(), queue, json.loads(body), score / 1000))
        return sorted(letters, key=lambda d: d.dead_at or 0, reverse=True)[:limit]

    def requeue(self, message_id: str) -> bool:
        for queue in QUEUES:
            xq = f"{self.ns}:{queue}.XQ"
            body = self.client.hget(f"{xq}.msgs", message_id)
            if body is None:
                continue
            pipe = self.client.pipeline()
            pipe.zrem(xq, message_id)
            pipe.hdel(f"{xq}.msgs", message_id)
            removed, _ = pipe.execute()
            if removed:  # a concurrent requeue of the same letter loses here
                self.broker.enqueue(fresh_message(json.loads(body)))
                return True
        return False

    def ping(self) -> None:
        self.client.ping()
