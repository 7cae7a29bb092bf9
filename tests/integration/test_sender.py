"""Sending: a broker that hangs (accepts connections, never answers) must not queue requests
behind it; what the outbox sends together reaches a worker as single sends do."""

from __future__ import annotations

import asyncio
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

from runtime.settings import Settings
from web.outbox import Outbox
from worker.broker import make_broker
from worker.queue import OPERATION_BATCH, Sender, operation_message


def test_while_one_send_hangs_the_others_give_up_at_once_for_the_relay():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)  # accepts, never answers: a hung Redis
    port = listener.getsockname()[1]
    sender = Sender(make_broker(Settings(broker_url=f"redis://127.0.0.1:{port}/0?socket_timeout=3")))
    finished: list[tuple[int, bool]] = []
    lock = threading.Lock()

    def send(n: int) -> None:
        sent = sender.send(operation_message("purchase", f"op_{n}"))
        with lock:
            finished.append((n, sent))

    try:
        with ThreadPoolExecutor(max_workers=10) as pool:
            pool.submit(send, 0)
            threading.Event().wait(0.5)  # the first send is now stuck on the silent socket
            list(pool.map(send, range(1, 10)))
    finally:
        listener.close()

    assert sorted(n for n, _ in finished[:9]) == list(range(1, 10))
    assert finished[-1][0] == 0  # the stuck one finished last: nobody waited behind it
    assert not any(sent for _, sent in finished)


def drained(broker) -> list:
    """The messages waiting on the operations queue, taken and acknowledged."""
    consumer = broker.consume("operations", prefetch=20, timeout=500)
    received = []
    for message in consumer:
        if message is None:
            break
        received.append(message)
        consumer.ack(message)
    return received


def test_messages_sent_together_reach_a_worker_as_messages_sent_one_by_one_do(redis_url):
    broker = make_broker(Settings(broker_url=redis_url))
    sender = Sender(broker)
    try:
        assert sender.send(operation_message("purchase", "op_alone"))
        assert sender.send_many([operation_message("purchase", f"op_{n}") for n in range(5)]) == []

        received = drained(broker)
    finally:
        broker.close()

    assert sorted(m.args[0] for m in received) == ["op_0", "op_1", "op_2", "op_3", "op_4", "op_alone"]
    assert {m.actor_name for m in received} == {"purchases.execute"}
    assert len({m.options["redis_message_id"] for m in received}) == 6


def test_messages_sent_together_to_a_broker_that_is_down_are_all_left_to_the_relay():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there: connections are refused
    sender = Sender(make_broker(Settings(broker_url=f"redis://127.0.0.1:{port}/0")))
    batch = [operation_message("purchase", f"op_{n}") for n in range(3)]

    assert sender.send_many(batch) == batch


def test_the_outbox_sends_operations_of_one_kind_together_a_batch_to_a_message(redis_url):
    broker = make_broker(Settings(broker_url=redis_url))
    purchases = [f"op_p{n:02d}" for n in range(OPERATION_BATCH + 5)]

    async def accept_all() -> None:
        outbox = Outbox(Sender(broker))
        outbox.start()
        for operation_id in purchases:
            outbox.submit("purchase", operation_id)
        outbox.submit("renewal_batch", "op_b1")
        outbox.submit("renewal_batch", "op_b2")
        outbox.submit("renewal", "op_r1")
        await outbox.close()

    try:
        asyncio.run(accept_all())
        received = drained(broker)
    finally:
        broker.close()

    named = sorted((m.actor_name, m.args[0] if isinstance(m.args[0], str) else tuple(m.args[0])) for m in received)
    assert named == [
        ("purchases.execute", tuple(purchases[:OPERATION_BATCH])),
        ("purchases.execute", tuple(purchases[OPERATION_BATCH:])),
        ("renewal_batches.execute", "op_b1"),  # its actor takes one
        ("renewal_batches.execute", "op_b2"),
        ("renewals.execute", "op_r1"),  # one alone is sent as itself, as messages always were
    ]
