"""Actor names, queues and sending: what the web needs to enqueue without importing actors."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass

import dramatiq
import structlog
from dramatiq import Message

log = structlog.get_logger("tenure.queue")

OPERATIONS_QUEUE = "operations"
TIERS_QUEUE = "tiers"
WEBHOOKS_QUEUE = "webhooks"
LIFECYCLE_QUEUE = "lifecycle"
QUEUES = (OPERATIONS_QUEUE, TIERS_QUEUE, WEBHOOKS_QUEUE, LIFECYCLE_QUEUE)
STATE_ACTOR = "lifecycle.advance"
REMINDER_ACTOR = "reminders.send"
AUTORENEW_ACTOR = "autorenew.attempt"

# operation kind -> actor name ("<noun>.<verb>")
ACTOR_FOR_KIND = {
    "purchase": "purchases.execute",
    "renewal": "renewals.execute",
    "transfer": "transfers.execute",
    "release": "releases.execute",
    "client_upsert": "clients.upsert",
    "renewal_batch": "renewal_batches.execute",
    "test_clock": "test_clocks.advance",
}
TIER_ACTOR = "tiers.recalculate"
DELIVER_ACTOR = "webhooks.deliver"


def operation_message(kind: str, operation_id: str, retake: int = 0) -> Message:
    """The message that runs an operation. `retake` (n > 0): the n-th message in a row sent by
    a worker whose batch held the operation and broke off; it takes the operation while running."""
    return Message(
        queue_name=OPERATIONS_QUEUE,
        actor_name=ACTOR_FOR_KIND[kind],
        args=(operation_id,),
        kwargs={"retake": retake} if retake else {},
        options={},
    )


def tier_message(organization_id: str) -> Message:
    return Message(queue_name=TIERS_QUEUE, actor_name=TIER_ACTOR, args=(organization_id,), kwargs={}, options={})


def lifecycle_message(actor_name: str, product_ids: list[str]) -> Message:
    return Message(queue_name=LIFECYCLE_QUEUE, actor_name=actor_name, args=(product_ids,), kwargs={}, options={})


# Deliveries one deliver message carries (worker.webhooks.delivery.deliver_many sends them concurrently).
DELIVERY_BATCH = 50


def delivery_message(delivery_ids: str | list[str]) -> Message:
    """One message for a delivery, or for a batch of up to DELIVERY_BATCH of them."""
    ids = [delivery_ids] if isinstance(delivery_ids, str) else list(delivery_ids)
    return Message(queue_name=WEBHOOKS_QUEUE, actor_name=DELIVER_ACTOR, args=(ids,), kwargs={}, options={})


def delivery_messages(delivery_ids: list[str]) -> list[Message]:
    return [delivery_message(delivery_ids[i : i + DELIVERY_BATCH]) for i in range(0, len(delivery_ids), DELIVERY_BATCH)]


@dataclass
class Sender:
    """Sends messages without ever holding up a request for long; `send` never raises.

    After a broker failure it stops trying for `pause_s`. While one send has been stuck
    for more than `slow_s` (a broker that hangs instead of refusing), other sends give
    up at once instead of queueing behind it. Whatever is not sent, the relay sends.
    """

    broker: dramatiq.Broker
    pause_s: float = 2.0
    slow_s: float = 0.25

    def __post_init__(self) -> None:
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._in_flight: dict[int, float] = {}
        self._tokens = itertools.count()
        for queue in QUEUES:
            self.broker.declare_queue(queue)

    def send(self, message: Message, delay_ms: int | None = None) -> bool:
        now = time.monotonic()
        with self._lock:
            token = next(self._tokens)
            if now < self._down_until or any(now - t > self.slow_s for t in self._in_flight.values()):
                return False
            self._in_flight[token] = now
        try:
            self.broker.enqueue(message, delay=delay_ms)
            return True
        except Exception as exc:  # redis, pika and socket errors all mean "not sent"
            with self._lock:
                self._down_until = time.monotonic() + self.pause_s
            log.warning("broker_send_failed", actor=message.actor_name, error=str(exc))
            return False
        finally:
            with self._lock:
                del self._in_flight[token]
