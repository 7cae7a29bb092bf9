"""SQLite's write transactions of one process take the lock in the order they asked for it,
whichever event loop (the web's, the workers') they run on."""

from __future__ import annotations

import asyncio
import threading

from tables.write_gate import WriteGate


def test_writers_on_two_event_loops_are_served_in_the_order_they_came():
    gate = WriteGate()
    order: list[str] = []
    queued = threading.Semaphore(0)
    threads: list[threading.Thread] = []

    async def holder() -> None:
        assert await gate.acquire()
        for name in ("web-1", "worker-1", "web-2"):  # each asks, on its loop, while the gate is held
            threads.append(threading.Thread(target=asyncio.run, args=(writer(name),)))
            threads[-1].start()
            queued.acquire()
        order.append("first")
        gate.release()

    async def writer(name: str) -> None:
        turn = asyncio.ensure_future(gate.acquire())
        await asyncio.sleep(0)  # queued now
        queued.release()
        assert await turn
        order.append(name)
        gate.release()

    asyncio.run(holder())
    for thread in threads:
        thread.join(timeout=10)

    assert order == ["first", "web-1", "worker-1", "web-2"]


def test_a_writer_that_gives_up_is_skipped_and_one_that_waits_too_long_goes_ahead_without_the_gate():
    gate = WriteGate()

    async def scenario() -> list[str]:
        seen = []
        assert await gate.acquire()
        cancelled = asyncio.ensure_future(gate.acquire())
        waiting = asyncio.ensure_future(gate.acquire())
        await asyncio.sleep(0)
        cancelled.cancel()
        assert await gate.acquire(timeout=0) is False  # the gate is held: it goes ahead without it
        gate.release()  # the first holder hands over: the cancelled one is skipped
        assert await waiting
        seen.append("waiting served")
        gate.release()
        assert await gate.acquire(timeout=0)  # free again
        seen.append("free")
        return seen

    assert asyncio.run(scenario()) == ["waiting served", "free"]
