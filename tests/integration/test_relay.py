"""The relay sends again only what cannot still be waiting in the broker (no duplicates for a backlog)."""

from __future__ import annotations

import asyncio
import time

from dramatiq import Message

from tables.operations import Operation
from tests.api import builders
from tests.integration.flows import buy, db, wait_all
from worker.queue import operations_named
from worker.relay import relay

STALL_S = 2  # the integration settings' relay_stall_seconds


def relay_once(sender) -> int:
    return asyncio.run(relay(sender, STALL_S))


def waiting(broker) -> int:
    """Operations named by the messages waiting on the queue (a message may name several)."""
    queued = broker.client.lrange(f"{broker.namespace}:operations", 0, -1)
    bodies = broker.client.hmget(f"{broker.namespace}:operations.msgs", queued) if queued else []
    return sum(len(operations_named(Message.decode(body))) for body in bodies if body)


def sent_by(broker, count: int, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while waiting(broker) < count:
        assert time.monotonic() < deadline, f"fewer than {count} operations queued after {timeout_s} s"
        time.sleep(0.01)


def test_operations_whose_messages_still_wait_in_the_queue_are_not_sent_again(api, broker, sender, workers):
    owner, org = builders.funded(api, 100_000)
    op_ids = [buy(api, owner, org, f"backlog-{n}.fr").json()["id"] for n in range(3)]  # no worker yet
    time.sleep(STALL_S + 0.5)  # stalled by the old rule: sent that long ago, still pending

    assert relay_once(sender) == 0
    assert waiting(broker) == 3

    workers()
    assert {op["status"] for op in wait_all(api, owner, op_ids)} == {"succeeded"}
    assert db(Operation.select(Operation.attempts).where(Operation.id.is_in(op_ids)).run()) == [{"attempts": 1}] * 3


def test_a_lost_message_is_sent_again_even_with_a_backlog_behind_it(api, broker, sender):
    owner, org = builders.funded(api, 100_000)
    lost = buy(api, owner, org, "lost.fr").json()["id"]
    sent_by(broker, 1)  # sent off the request path, just after the answer
    broker.client.delete(f"{broker.namespace}:operations")  # its message is gone from the broker
    time.sleep(STALL_S + 0.5)
    behind = buy(api, owner, org, "behind.fr").json()["id"]  # sent after: waits at the head
    sent_by(broker, 1)

    assert relay_once(sender) == 1

    assert waiting(broker) == 2
    sent_again = db(
        Operation.select(Operation.id, Operation.enqueued_at)
        .where(Operation.id.is_in([lost, behind]))
        .order_by(Operation.enqueued_at)
        .run()
    )
    assert sent_again[-1]["id"] == lost  # stamped by the relay just now
    assert relay_once(sender) == 0
