"""The scheduler (APScheduler 3.x): sends messages on a schedule, never business logic."""

from __future__ import annotations

from datetime import UTC

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from tables.settings import Settings
from worker.queue import Sender
from worker.relay import relay

RELAY_INTERVAL_S = 5


def make_scheduler(settings: Settings, sender: Sender) -> AsyncIOScheduler:
    """Build inside the running loop (AsyncIOScheduler binds to it at start)."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(relay, "interval", seconds=RELAY_INTERVAL_S, id="relay",
                      args=[sender, settings.relay_stall_seconds],
                      max_instances=1, coalesce=True, misfire_grace_time=RELAY_INTERVAL_S)
    return scheduler
