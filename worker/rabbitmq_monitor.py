"""The RabbitMQ broker's queues: depths from passive queue declarations, dead letters browsed
from the `.XQ` queues (and put back, all but the one requeued)."""

from __future__ import annotations

import json
import threading

from dramatiq.common import dq_name, xq_name

from worker.monitor_records import DeadLetter, QueueDepth, dead_letter, fresh_message
from worker.queue import QUEUES


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
            letter = dead_letter(data.get("message_id", "?"), queue, data, None)
            if take and letter.message_id == take and not taken:
                self.broker.enqueue(fresh_message(data))
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
