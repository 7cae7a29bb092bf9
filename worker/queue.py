"""Actor names, queues and sending: what the web needs to enqueue without importing actors.

`enqueue_pipelined` does by hand what `RedisBroker.enqueue` does per message (Dramatiq has no
batch enqueue: `group().run()` loops over `enqueue`), so that the outbox's batch costs one Redis
round trip; it calls Dramatiq's own dispatch script and middleware hooks, and a test checks that
a pipelined batch reaches a consumer exactly as single sends do.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from uuid import uuid4

import dramatiq
import structlog
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis

from rules.operations import OperationKind

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
ACTOR_FOR_KIND: dict[str, str] = {
    OperationKind.PURCHASE: "purchases.execute",
    OperationKind.RENEWAL: "renewals.execute",
    OperationKind.TRANSFER: "transfers.execute",
    OperationKind.RELEASE: "releases.execute",
    OperationKind.CLIENT_UPSERT: "clients.upsert",
    OperationKind.RENEWAL_BATCH: "renewal_batches.execute",
    OperationKind.TEST_CLOCK: "test_clocks.advance",
}
# Kinds whose actor takes a list of operations (`worker.batching.run_batch`): all but a bulk
# renewal and a test clock's advance, whose actors take one.
BATCHED_KINDS = frozenset(ACTOR_FOR_KIND) - {OperationKind.RENEWAL_BATCH, OperationKind.TEST_CLOCK}
TIER_ACTOR = "tiers.recalculate"
DELIVER_ACTOR = "webhooks.deliver"


# Operations one message names (the actor claims them together: `worker.batching`).
OPERATION_BATCH = 50  # enough to amortize a batch's fixed statements, few enough to share out


def operation_message(kind: str, operation_ids: str | list[str], retake: int = 0) -> Message:
    """The message that runs an operation, or up to OPERATION_BATCH of one kind together.
    `retake` (n > 0): the n-th message in a row sent by a worker whose batch held them and broke
    off; it takes them while running. One id is sent as itself (as messages always were)."""
    ids = operation_ids if isinstance(operation_ids, str) or len(operation_ids) > 1 else operation_ids[0]
    return Message(
        queue_name=OPERATIONS_QUEUE,
        actor_name=ACTOR_FOR_KIND[kind],
        args=(ids,),
        kwargs={"retake": retake} if retake else {},
        options={},
    )


def operation_messages(kind_and_ids: list[tuple[str, str]]) -> list[Message]:
    """Messages for these operations, those of one kind by OPERATION_BATCH (a renewal batch, a
    test clock advance: one each, their actors take one)."""
    by_kind: dict[str, list[str]] = {}
    for kind, operation_id in kind_and_ids:
        by_kind.setdefault(kind, []).append(operation_id)
    messages = []
    for kind, ids in by_kind.items():
        size = OPERATION_BATCH if kind in BATCHED_KINDS else 1
        messages += [operation_message(kind, ids[i : i + size]) for i in range(0, len(ids), size)]
    return messages


def operations_named(message: Message) -> list[str]:
    """The operation ids an operation message names."""
    named = message.args[0]
    return [named] if isinstance(named, str) else list(named)


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
        return not self._sending([message], lambda: self.broker.enqueue(message, delay=delay_ms))

    def send_many(self, messages: list[Message]) -> list[Message]:
        """Sends `messages` (no delay); answers those not sent. On Redis in one pipeline (one
        round trip, and one wait for the GIL in a threaded caller, instead of one per message)."""
        if not messages:
            return []
        if not isinstance(self.broker, RedisBroker):
            return [message for message in messages if not self.send(message)]
        return self._sending(messages, lambda: enqueue_pipelined(self.broker, messages))

    def _sending(self, messages: list[Message], enqueue) -> list[Message]:
        """Runs `enqueue` unless the broker is paused or hung; answers `messages` if it did not
        (or failed), else none."""
        now = time.monotonic()
        with self._lock:
            token = next(self._tokens)
            if now < self._down_until or any(now - t > self.slow_s for t in self._in_flight.values()):
                return messages
            self._in_flight[token] = now
        try:
            enqueue()
            return []
        except Exception as exc:  # redis, pika and socket errors all mean "not sent"
            with self._lock:
                self._down_until = time.monotonic() + self.pause_s
            log.warning("broker_send_failed", actor=messages[0].actor_name, messages=len(messages), error=str(exc))
            return messages
        finally:
            with self._lock:
                del self._in_flight[token]


def enqueue_pipelined(broker: RedisBroker, messages: list[Message]) -> None:
    """What `RedisBroker.enqueue` does for each message (a Redis id of its own, the middleware's
    hooks, Dramatiq's dispatch script), with the scripts' calls sent in one pipeline."""
    pipeline = broker.client.pipeline(transaction=False)
    dispatch = broker.scripts["dispatch"]
    queued = []
    for message in messages:
        message = message.copy(options={"redis_message_id": str(uuid4())})
        broker.emit_before("enqueue", message, None)
        arguments = [
            "enqueue",
            current_millis(),
            message.queue_name,
            broker.broker_id,
            broker.heartbeat_timeout,
            broker.dead_message_ttl,
            broker._should_do_maintenance("enqueue"),
            broker._max_unpack_size(),
            message.options["redis_message_id"],
            message.encode(),
        ]
        dispatch(keys=[broker.namespace], args=arguments, client=pipeline)
        queued.append(message)
    pipeline.execute()
    for message in queued:
        broker.emit_after("enqueue", message, None)
