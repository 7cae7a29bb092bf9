"""A broker that hangs (accepts connections, never answers) must not queue requests behind it."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor

from tables.settings import Settings
from worker.broker import make_broker
from worker.queue import Sender, operation_message


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
