"""Sends accepted operations' messages off the request path, in batches.

Accepting an operation commits its row (the outbox) with `enqueued_at` set, then hands its
kind and id to this process's `Outbox` and answers 202 without waiting for the broker. One
background task takes whatever operations are waiting (up to MAX_BATCH), makes their
messages, those of one kind by OPERATION_BATCH (one message names many: the worker claims
them together, and pays Dramatiq's per-message cost once for them), sends them in one hop to
a thread (the broker clients are blocking) and, on Redis, in one pipeline (a blocking call
per message made the thread and the event loop trade the GIL for each), and clears
`enqueued_at` of those the broker refused, so the relay sends them at its next tick. A
message lost with its process (a crash before the send) is sent by the relay once
`enqueued_at` is older than TENURE_RELAY_STALL_SECONDS: either way an accepted operation is
sent.
"""

from __future__ import annotations

import asyncio

import anyio
import structlog
from dramatiq import Message

from tables import operation_relay
from worker.queue import Sender, operation_messages, operations_named

log = structlog.get_logger("tenure.web")
MAX_BATCH = 500


class Outbox:
    def __init__(self, sender: Sender) -> None:
        self.sender = sender
        self._waiting: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="tenure-outbox")

    def submit(self, kind: str, operation_id: str) -> None:
        """Sends the operation's message soon (it is committed: the relay backs this up)."""
        self._waiting.put_nowait((kind, operation_id))

    async def close(self) -> None:
        """Sends what is waiting, then stops."""
        if self._task is None:
            return
        self._waiting.put_nowait(None)
        await self._task
        self._task = None

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[tuple[str, str]] = []
            item = await self._waiting.get()
            while True:
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
                if stopping or len(batch) >= MAX_BATCH or self._waiting.empty():
                    break
                item = self._waiting.get_nowait()
            if batch:
                await self._send(batch)

    async def _send(self, batch: list[tuple[str, str]]) -> None:
        messages = operation_messages(batch)
        try:
            refused = await anyio.to_thread.run_sync(self._send_all, messages)
        except Exception as exc:  # never: Sender.send does not raise; the relay covers it anyway
            log.error("outbox_send_failed", error=f"{type(exc).__name__}: {exc}", messages=len(messages))
            return
        if not refused:
            return
        ids = [operation_id for message in refused for operation_id in operations_named(message)]
        try:
            await operation_relay.unsent_many(ids)  # the relay sends them at its next tick
        except Exception as exc:  # the database is down too: the relay sends them after the stall
            log.warning("operation_unsent_not_recorded", operation_ids=ids, error=f"{type(exc).__name__}: {exc}")
        log.info("operations_unsent", operation_ids=ids)

    def _send_all(self, batch: list[Message]) -> list[Message]:
        return self.sender.send_many(batch)
