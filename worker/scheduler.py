"""The scheduler (APScheduler 3.x): sends messages on a schedule, never business logic."""

from __future__ import annotations

from datetime import UTC

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from rules.schedule import TIER_RUN_TIME
from runtime.settings import Settings
from worker import retention, sweeps
from worker.execution import Bounds
from worker.queue import Sender
from worker.relay import relay
from worker.webhooks.fanout import fan_out, send_due

RELAY_INTERVAL_S = 5
WEBHOOKS_INTERVAL_S = 2
SWEEP_INTERVAL_S = 60


async def webhooks_tick(sender: Sender) -> None:
    """Events no actor fanned out yet (sweeps, lost messages) and deliveries due for a retry."""
    await fan_out(sender)
    await send_due(sender)


def make_scheduler(settings: Settings, sender: Sender) -> AsyncIOScheduler:
    """Build inside the running loop (AsyncIOScheduler binds to it at start)."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(
        relay,
        "interval",
        seconds=RELAY_INTERVAL_S,
        id="relay",
        args=[sender, settings.relay_stall_seconds, Bounds.of(settings)],
        max_instances=1,
        coalesce=True,
        misfire_grace_time=RELAY_INTERVAL_S,
    )
    scheduler.add_job(
        webhooks_tick,
        "interval",
        seconds=WEBHOOKS_INTERVAL_S,
        id="webhooks",
        args=[sender],
        max_instances=1,
        coalesce=True,
        misfire_grace_time=WEBHOOKS_INTERVAL_S,
    )
    for job in sweeps.PRODUCT_SWEEPS:
        scheduler.add_job(
            sweeps.sweep,
            "interval",
            seconds=SWEEP_INTERVAL_S,
            id=f"sweep-{job}",
            args=[job, sender],
            max_instances=1,
            coalesce=True,
            misfire_grace_time=SWEEP_INTERVAL_S,
        )
    scheduler.add_job(
        sweeps.recalculate_tiers,
        "cron",
        hour=TIER_RUN_TIME.hour,
        minute=TIER_RUN_TIME.minute,
        id="tiers-daily",
        args=[sender],
        max_instances=1,
        coalesce=True,
        misfire_grace_time=3600,
    )
    scheduler.add_job(
        sweeps.forget_old_runs,
        "cron",
        hour=4,
        minute=7,
        id="forget-old-runs",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=3600,
    )
    scheduler.add_job(
        retention.run,
        "cron",
        hour=4,
        minute=37,
        id="retention-daily",
        args=[settings],
        max_instances=1,
        coalesce=True,
        misfire_grace_time=3600,
    )
    return scheduler


async def run_forever(settings: Settings) -> None:
    """`tenure scheduler`: the jobs above until SIGTERM/SIGINT."""
    import asyncio
    import signal

    from tables import engine
    from worker.broker import make_broker

    await engine.start_pool(4)
    scheduler = make_scheduler(settings, Sender(make_broker(settings)))
    scheduler.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        await engine.close_pool()
