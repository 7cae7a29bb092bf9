"""What ops people see of the broker: queue depths, dead letters, and requeueing one.

Dramatiq has no queue-depth API, so each broker is read directly: Redis keys
(`dramatiq:<queue>`, `.DQ`, `.XQ`, acks), RabbitMQ queue declarations, or the
in-process StubBroker. Calls are blocking; async callers run them in a thread.

On Redis, a message a worker took and has not acknowledged is in that worker's ack set
(`dramatiq:__acks__.<worker id>.<queue>`); each worker's last contact is its score in
`dramatiq:__heartbeats__`. A worker silent for longer than the broker's heartbeat timeout
(60 s) is dead to Dramatiq too: what it held is `orphaned`, not `in_flight`, until
Dramatiq's maintenance puts it back on its queue (or the relay sent it again).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass

import dramatiq
import structlog
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name, q_name, xq_name

from worker.queue import QUEUES

log = structlog.get_logger("tenure.monitoring")


@dataclass
class QueueDepth:
    queue: str
    waiting: int
    delayed: int
    in_flight: int | None  # held by live workers; None where the broker cannot tell (RabbitMQ)
    dead_letters: int
    orphaned: int | None = None  # held by workers that stopped answering (killed); None: cannot tell

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DeadLetter:
    message_id: str
    queue: str
    actor: str
    args: list
    retries: int  # Dramatiq's count of failed runs
    error: str | None  # the exception: last line of the traceback
    dead_at: float | None  # UNIX seconds
    traceback: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _dead_letter(message_id: str, queue: str, data: dict, dead_at: float | None) -> DeadLetter:
    options = data.get("options", {})
    trace = options.get("traceback") or ""
    return DeadLetter(
        message_id=message_id,
        queue=queue,
        actor=data.get("actor_name", "?"),
        args=list(data.get("args", [])),
        retries=int(options.get("retries", 0)),
        error=trace.strip().splitlines()[-1] if trace.strip() else None,
        dead_at=dead_at,
        traceback=trace or None,
    )


def _fresh(data: dict) -> Message:
    """The dead message as a new one: same actor and arguments, retries reset."""
    return Message(
        queue_name=data["queue_name"].removesuffix(".DQ"),
        actor_name=data["actor_name"],
        args=tuple(data["args"]),
        kwargs=data.get("kwargs", {}),
        options={},
    )


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
                    letters.append(_dead_letter(message_id.decode(), queue, json.loads(body), score / 1000))
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
                self.broker.enqueue(_fresh(json.loads(body)))
                return True
        return False

    def ping(self) -> None:
        self.client.ping()


class StubMonitor:
    def __init__(self, broker: StubBroker) -> None:
        self.broker = broker

    def depths(self) -> list[QueueDepth]:
        queues = self.broker.queues
        return [
            QueueDepth(
                queue,
                waiting=queues[queue].qsize() if queue in queues else 0,
                delayed=queues[dq_name(queue)].qsize() if dq_name(queue) in queues else 0,
                in_flight=None,
                dead_letters=len(self.broker.dead_letters_by_queue.get(queue, [])),
            )
            for queue in QUEUES
        ]

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        letters = []
        for queue in QUEUES:
            for message in self.broker.dead_letters_by_queue.get(queue, [])[-limit:]:
                letters.append(
                    _dead_letter(message.message_id, queue, message.asdict(), message.message_timestamp / 1000)
                )
        return letters[:limit]

    def requeue(self, message_id: str) -> bool:
        for queue in QUEUES:
            letters = self.broker.dead_letters_by_queue.get(queue, [])
            for message in list(letters):
                if message.message_id == message_id:
                    letters.remove(message)
                    self.broker.enqueue(_fresh(message.asdict()))
                    return True
        return False

    def ping(self) -> None:
        return None

    def oldest_waiting(self, queue: str) -> float | None:
        return None  # in-process: nothing is lost that a re-send would recover


class RabbitmqMonitor:
    """Depths from passive queue declarations; dead letters read from the `.XQ` queues.

    A pika channel must not be used from two threads at once, and the ops API, the
    page and the metrics refresher call from different threads: one lock serialises them.
    """

    def __init__(self, broker) -> None:
        self.broker = broker
        self._lock = threading.Lock()

    def _count(self, channel, name: str) -> int:
        return channel.queue_declare(name, passive=True).method.message_count

    def depths(self) -> list[QueueDepth]:
        with self._lock:
            channel = self.broker.channel
            result = []
            for queue in QUEUES:
                self.broker.declare_queue(queue, ensure=True)
                result.append(
                    QueueDepth(
                        queue,
                        waiting=self._count(channel, queue),
                        delayed=self._count(channel, dq_name(queue)),
                        in_flight=None,
                        dead_letters=self._count(channel, xq_name(queue)),
                    )
                )
            return result

    def _browse(self, queue: str, limit: int, take: str | None = None) -> tuple[list[DeadLetter], bool]:
        """Reads up to `limit` dead letters of a queue, putting back all but `take`."""
        channel = self.broker.channel
        seen, taken, tags = [], False, []
        for _ in range(limit):
            method, properties, body = channel.basic_get(xq_name(queue), auto_ack=False)
            if method is None:
                break
            data = json.loads(body)
            letter = _dead_letter(data.get("message_id", "?"), queue, data, None)
            if take and letter.message_id == take and not taken:
                self.broker.enqueue(_fresh(data))
                channel.basic_ack(method.delivery_tag)
                taken = True
            else:
                seen.append(letter)
                tags.append(method.delivery_tag)
        for tag in tags:
            channel.basic_nack(tag, requeue=True)
        return seen, taken

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        with self._lock:
            letters: list[DeadLetter] = []
            for queue in QUEUES:
                self.broker.declare_queue(queue, ensure=True)
                letters += self._browse(queue, limit)[0]
            return letters[:limit]

    def requeue(self, message_id: str) -> bool:
        with self._lock:
            return any(self._browse(queue, 10_000, take=message_id)[1] for queue in QUEUES)

    def oldest_waiting(self, queue: str) -> float | None:
        return None  # cannot peek without taking: the relay falls back to the stall rule

    def ping(self) -> None:
        with self._lock:
            self.broker.channel  # noqa: B018 - opens (or reuses) a connection


def monitor_for(broker: dramatiq.Broker):
    if isinstance(broker, StubBroker):
        return StubMonitor(broker)
    if type(broker).__name__ == "RedisBroker":
        return RedisMonitor(broker)
    if type(broker).__name__ == "RabbitmqBroker":
        return RabbitmqMonitor(broker)
    raise TypeError(f"no queue monitor for {type(broker).__name__}")
