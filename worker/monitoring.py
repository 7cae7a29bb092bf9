"""What ops people see of the broker: queue depths, dead letters, and requeueing one.

Dramatiq has no queue-depth API, so each broker is read directly: Redis keys
(`dramatiq:<queue>`, `.DQ`, `.XQ`, acks), RabbitMQ queue declarations, or the
in-process StubBroker. Calls are blocking; async callers run them in a thread.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass

import dramatiq
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name, xq_name

from worker.queue import QUEUES


@dataclass
class QueueDepth:
    queue: str
    waiting: int
    delayed: int
    in_flight: int | None  # None where the broker cannot tell (RabbitMQ without its HTTP API)
    dead_letters: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DeadLetter:
    message_id: str
    queue: str
    actor: str
    args: list
    retries: int
    error: str | None
    dead_at: float | None  # UNIX seconds

    def to_dict(self) -> dict:
        return asdict(self)


def _dead_letter(message_id: str, queue: str, data: dict, dead_at: float | None) -> DeadLetter:
    options = data.get("options", {})
    trace = options.get("traceback") or ""
    return DeadLetter(message_id=message_id, queue=queue, actor=data.get("actor_name", "?"),
                      args=list(data.get("args", [])), retries=int(options.get("retries", 0)),
                      error=trace.strip().splitlines()[-1] if trace.strip() else None, dead_at=dead_at)


def _fresh(data: dict) -> Message:
    """The dead message as a new one: same actor and arguments, retries reset."""
    return Message(queue_name=data["queue_name"].removesuffix(".DQ"), actor_name=data["actor_name"],
                   args=tuple(data["args"]), kwargs=data.get("kwargs", {}), options={})


class RedisMonitor:
    def __init__(self, broker) -> None:
        self.broker = broker
        self.client = broker.client
        self.ns = broker.namespace

    def depths(self) -> list[QueueDepth]:
        result = []
        for queue in QUEUES:
            key = f"{self.ns}:{queue}"
            in_flight = 0
            for ack_key in self.client.scan_iter(match=f"{self.ns}:__acks__.*.{queue}", count=500):
                in_flight += self.client.scard(ack_key)
            result.append(QueueDepth(queue, waiting=self.client.llen(key),
                                     delayed=self.client.llen(f"{self.ns}:{dq_name(queue)}"),
                                     in_flight=in_flight, dead_letters=self.client.zcard(f"{key}.XQ")))
        return result

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
        return [QueueDepth(queue, waiting=queues[queue].qsize() if queue in queues else 0,
                           delayed=queues[dq_name(queue)].qsize() if dq_name(queue) in queues else 0,
                           in_flight=None,
                           dead_letters=len(self.broker.dead_letters_by_queue.get(queue, [])))
                for queue in QUEUES]

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        letters = []
        for queue in QUEUES:
            for message in self.broker.dead_letters_by_queue.get(queue, [])[-limit:]:
                letters.append(_dead_letter(message.message_id, queue, message.asdict(),
                                            message.message_timestamp / 1000))
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
                result.append(QueueDepth(queue, waiting=self._count(channel, queue),
                                         delayed=self._count(channel, dq_name(queue)), in_flight=None,
                                         dead_letters=self._count(channel, xq_name(queue))))
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
