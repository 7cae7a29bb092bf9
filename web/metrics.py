"""Prometheus: HTTP metrics from Litestar's middleware, and tenure's state as gauges.

The state (operations in flight, queue depths, whether the broker answers, pending
deliveries, sweeps, tier changes, retention) is read through indexes from the database and the broker every few seconds by a task in the
app's lifespan, so a scrape never waits on either. Every web replica reports the
same cluster-wide figures; per-process worker counters come from `tenure worker`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import structlog
from litestar import Request
from litestar.enums import ScopeType
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController, PrometheusMiddleware
from litestar.types import Message, Send
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from runtime.clock import clock
from tables import deliveries, events, operations, retention, sweeps

log = structlog.get_logger("tenure.metrics")
REFRESH_S = 5
REFRESHER_TASK = "tenure-metrics-refresher"  # its statements are not a request's (tests count those)


class HttpMetrics(PrometheusMiddleware):
    """Litestar's Prometheus middleware, the same metrics and labels, without two costs it pays
    on every request whatever the config: the request's whole URL parsed though only the
    route's template is used as the `path` label (`group_path`), and `functools.wraps` on the
    wrapped `send` (its attribute copies were ~3 % of the embedded demo's CPU under load)."""

    def _get_default_labels(self, request: Request) -> dict[str, str | int | float]:
        if not self._config.group_path:
            return super()._get_default_labels(request)
        scope = request.scope
        return {
            "method": request.method if scope["type"] == ScopeType.HTTP else scope["type"],
            "path": scope["path_template"],
            "status_code": 200,
            "app_name": self._config.app_name,
        }

    def _get_wrapped_send(self, send: Send, request_span: dict[str, float]) -> Callable:
        async def wrapped_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                request_span["status_code"] = message["status"]
            if message["type"] == "http.response.body":
                end = time.perf_counter()
                request_span["duration"] = end - request_span["start_time"]
                request_span["end_time"] = end
            await send(message)

        return wrapped_send


PROMETHEUS = PrometheusConfig(
    app_name="tenure", prefix="tenure", group_path=True, exclude=["/metrics"], middleware_class=HttpMetrics
)


# Requests refused by a rate limit (web.ratelimit), one label value per limit.
RATE_LIMITED = Counter("tenure_rate_limited", "Requests refused by a rate limit (429).", ["limit"])


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False


class StateCollector:
    """Yields the last snapshot; registered once per process."""

    def __init__(self) -> None:
        self.snapshot: dict = {}

    def collect(self):
        snap = self.snapshot
        if not snap:
            return
        ops = GaugeMetricFamily(
            "tenure_operations_in_flight", "Pending and running operations.", labels=["kind", "status"]
        )
        for row in snap["operations"]:
            ops.add_metric([row["kind"], row["status"]], row["n"])
        yield ops
        queue = GaugeMetricFamily(
            "tenure_queue_messages", "Broker messages per queue and state.", labels=["queue", "state"]
        )
        for depth in snap["queues"]:
            for state in ("waiting", "delayed", "in_flight", "orphaned", "dead_letters"):
                if depth[state] is not None:
                    queue.add_metric([depth["queue"], state], depth[state])
        yield queue
        yield GaugeMetricFamily(
            "tenure_broker_up", "1 if the broker answered the last snapshot, else 0.", value=snap["broker_up"]
        )
        yield GaugeMetricFamily(
            "tenure_webhook_deliveries_pending",
            "Webhook deliveries waiting for an attempt.",
            value=snap["deliveries_pending"],
        )
        last_run = GaugeMetricFamily(
            "tenure_sweep_last_run_timestamp_seconds", "Start of each job's last run.", labels=["job"]
        )
        items = GaugeMetricFamily("tenure_sweep_last_items", "Due items the last run took.", labels=["job"])
        duration = GaugeMetricFamily("tenure_sweep_last_duration_seconds", "Duration of the last run.", labels=["job"])
        for run in snap["sweeps"]:
            last_run.add_metric([run["job"]], run["started_at"].timestamp())
            items.add_metric([run["job"]], run["items"])
            duration.add_metric([run["job"]], run["duration_ms"] / 1000)
        yield from (last_run, items, duration)
        tiers = CounterMetricFamily("tenure_tier_changes", "Volume tier changes recorded.")
        tiers.add_metric([], snap["tier_changes"])
        yield tiers
        deleted = CounterMetricFamily(
            "tenure_retention_deleted_rows",
            "Rows the retention job deleted, per table (idempotency_keys: keys cleared on operations that stay).",
            labels=["table"],
        )
        oldest = GaugeMetricFamily(
            "tenure_retention_oldest_age_seconds",
            "Age of the oldest row kept, per table, by the time its retention window counts from.",
            labels=["table"],
        )
        for name, n in snap["retention_deleted"].items():
            deleted.add_metric([name], n)
        for name, age in snap["retention_oldest_age"].items():
            if age is not None:
                oldest.add_metric([name], age)
        yield from (deleted, oldest)


COLLECTOR = StateCollector()
_registered = False


async def broker_snapshot(monitor) -> dict:
    """Queue depths, or broker_up 0 (and no depths) when the broker does not answer."""
    try:
        with anyio.fail_after(REFRESH_S):
            depths = await anyio.to_thread.run_sync(monitor.depths)
    except Exception as exc:
        log.warning("metrics_broker_unreachable", error=f"{type(exc).__name__}: {exc}")
        return {"queues": [], "broker_up": 0}
    return {"queues": [d.to_dict() for d in depths], "broker_up": 1}


async def take_snapshot(monitor) -> dict:
    now = clock.now()
    oldest = await retention.oldest_kept()
    return {
        **await broker_snapshot(monitor),
        "operations": await operations.counts_in_flight(),
        "deliveries_pending": await deliveries.pending_deliveries(),
        "sweeps": await sweeps.latest(),
        "tier_changes": await events.count("tier.changed"),
        "retention_deleted": await retention.totals(),
        "retention_oldest_age": {
            name: None if at is None else max(0.0, (now - at).total_seconds()) for name, at in oldest.items()
        },
    }


@asynccontextmanager
async def refresher(app) -> AsyncIterator[None]:
    """Lifespan part: keeps COLLECTOR's snapshot fresh while the app runs."""
    global _registered
    if not _registered:
        REGISTRY.register(COLLECTOR)
        _registered = True

    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            try:
                COLLECTOR.snapshot = await take_snapshot(app.state.monitor)
            except Exception as exc:  # a database outage must not stop the loop
                log.warning("metrics_snapshot_failed", error=str(exc))
                if COLLECTOR.snapshot:  # the broker's state stays current (the rest is the last seen)
                    COLLECTOR.snapshot = {**COLLECTOR.snapshot, **await broker_snapshot(app.state.monitor)}
            try:
                await asyncio.wait_for(stop.wait(), REFRESH_S)
            except TimeoutError:
                pass

    task = asyncio.create_task(loop(), name=REFRESHER_TASK)
    try:
        yield
    finally:
        # Let a snapshot in progress finish: cancelling it would leave a database thread
        # answering a loop that is about to close.
        stop.set()
        await task
