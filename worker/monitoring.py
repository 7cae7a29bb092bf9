"""What ops people see of the broker: queue depths, dead letters, and requeueing one.

Dramatiq has no queue-depth API, so each broker is read directly: Redis keys
(worker/redis_monitor.py), RabbitMQ queue declarations (worker/rabbitmq_monitor.py), or the
in-process StubBroker (here). `monitor_for` gives a broker its monitor; what every monitor
reports is in worker/monitor_records.py. Calls are blocking; async callers run them in a thread.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name

from worker.monitor_records import DeadLetter, QueueDepth, dead_letter, fresh_message
from worker.queue import QUEUES
from worker.rabbitmq_monitor import RabbitmqMonitor
from worker.redis_monitor import RedisMonitor


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
                    dead_letter(message.message_id, queue, message.asdict(), message.message_timestamp / 1000)
                )
        return letters[:limit]

    def requeue(self, message_id: str) -> bool:
        for queue in QUEUES:
            letters = self.broker.dead_letters_by_queue.get(queue, [])
            for message in list(letters):
                if message.message_id == message_id:
                    letters.remove(message)
                    self.broker.enqueue(fresh_message(message.asdict()))
                    return True
        return False

    def ping(self) -> None:
        return None

    def oldest_waiting(self, queue: str) -> float | None:
        return None  # in-process: nothing is lost that a re-send would recover


def monitor_for(broker: dramatiq.Broker):
    if isinstance(broker, StubBroker):
        return StubMonitor(broker)
    if type(broker).__name__ == "RedisBroker":
        return RedisMonitor(broker)
    if type(broker).__name__ == "RabbitmqBroker":
        return RabbitmqMonitor(broker)
    raise TypeError(f"no queue monitor for {type(broker).__name__}")
