"""SQLite's write transactions of one process, taken in turn (first come, first served).

SQLite has one write lock per database. A writer that finds it taken waits in SQLite's busy
handler, which sleeps and retries (1, 2, 5 ... up to 100 ms between tries): whoever asks at
the moment the lock is free gets it, not whoever waited longest. In the embedded mode the
workers commit a batch and begin the next one at once, so an accepted request, asleep in
the busy handler, could miss every release and wait until its client gave up.

The gate orders them: before `BEGIN IMMEDIATE`, a transaction of this process waits its turn
here, and so does a statement that writes outside a transaction (tables/sqlite_engine.py).
The queue is shared by every thread and event loop of the process (the web's loop and the
workers'); the one that ends hands the gate to the next in line at once. SQLite's lock
stays the rule; the gate only decides who asks for it next. A writer that waits longer than
WAIT_S for its turn goes ahead without it (SQLite's busy timeout then applies as before), so
a transaction that, while holding the gate, waits for another one of this process cannot
hang it. Other processes on the same file (a `tenure sweep`) still meet SQLite's busy handler.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

WAIT_S = 20.0


class WriteGate:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held = False
        self._waiting: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = deque()

    async def acquire(self, timeout: float = WAIT_S) -> bool:
        """Waits for the gate: True once held (give it back with `release`), False if `timeout`
        passed first (the caller goes ahead without it and must not release it)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if not self._held:
                self._held = True
                return True
            turn = loop.create_future()
            entry = (loop, turn)
            self._waiting.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(turn), timeout)
            return True
        except BaseException as exc:
            with self._lock:
                queued = entry in self._waiting
                if queued:
                    self._waiting.remove(entry)
            if not queued:  # handed over meanwhile: pass it on
                if turn.done():
                    self.release()
                else:
                    turn.add_done_callback(lambda _: self.release())
            if isinstance(exc, TimeoutError):
                return False
            raise

    def release(self) -> None:
        """Hands the gate to the next writer in line, on its own event loop, or frees it."""
        with self._lock:
            while self._waiting:
                loop, turn = self._waiting.popleft()
                try:
                    loop.call_soon_threadsafe(_hand_over, turn)
                    return
                except RuntimeError:  # its loop is closed: the next one
                    continue
            self._held = False


def _hand_over(turn: asyncio.Future) -> None:
    if not turn.done():
        turn.set_result(None)


gate = WriteGate()
