"""Worker-side Prometheus metrics.

Created on first use, not at import: under `tenure worker`, Dramatiq's Prometheus
middleware sets PROMETHEUS_MULTIPROC_DIR at process boot and serves every worker
process's metrics on one port (TENURE_WORKER_METRICS_PORT, default 9191). In the
embedded mode they land in the web process's registry and show on its /metrics.
"""

from __future__ import annotations

import functools


@functools.cache
def _metrics():
    import prometheus_client as prom

    return {
        "operations": prom.Counter(
            "tenure_operations_finished", "Operations finished by this worker.", ["kind", "status"]
        ),
        "duration": prom.Histogram(
            "tenure_operation_duration_seconds",
            "From accept to finish, per finished operation.",
            ["kind", "status"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
        ),
        "deliveries": prom.Counter("tenure_webhook_attempts", "Webhook delivery attempts by outcome.", ["outcome"]),
    }


def operation_finished(kind: str, status: str, seconds: float) -> None:
    metrics = _metrics()
    metrics["operations"].labels(kind, status).inc()
    metrics["duration"].labels(kind, status).observe(max(0.0, seconds))


def delivery_attempted(outcome: str) -> None:
    _metrics()["deliveries"].labels(outcome).inc()
