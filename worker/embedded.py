"""The embedded default: Dramatiq workers and the scheduler inside the web process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import dramatiq

from runtime.settings import Settings
from worker.actors import declare
from worker.broker import make_broker
from worker.queue import Sender
from worker.scheduler import make_scheduler


class Embedded:
    """An in-process broker with its workers, and the scheduler, as app lifespans."""

    def __init__(self, settings: Settings, *, worker_threads: int = 4, with_scheduler: bool = True) -> None:
        self.settings = settings
        self.broker = make_broker(settings)
        self.sender = Sender(self.broker)
        self.actors = declare(self.broker, self.sender, settings)
        self.worker_threads = worker_threads
        self.with_scheduler = with_scheduler

    @asynccontextmanager
    async def lifespan(self, app) -> AsyncIterator[None]:
        worker = dramatiq.Worker(self.broker, worker_threads=self.worker_threads, worker_timeout=100)
        await anyio.to_thread.run_sync(worker.start)
        scheduler = make_scheduler(self.settings, self.sender) if self.with_scheduler else None
        if scheduler:
            scheduler.start()
        try:
            yield
        finally:
            if scheduler:
                scheduler.shutdown(wait=False)
            await anyio.to_thread.run_sync(worker.stop)
