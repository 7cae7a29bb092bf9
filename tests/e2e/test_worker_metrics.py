"""`tenure worker` exposes Prometheus metrics for all its processes on one port."""

from __future__ import annotations

import time

import httpx
import pytest
from litestar.testing import TestClient

from runtime.settings import Settings
from tests.api import builders
from tests.e2e.conftest import free_port, tenure_env, wait_for_port
from tests.integration.flows import buy, wait_done
from tests.ratelimits import UNLIMITED
from web.app import create_app


def total(text: str, metric: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels`."""
    found = 0.0
    for line in text.splitlines():
        if not line.startswith(metric + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            found += float(line.rsplit(" ", 1)[1])
    return found


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_worker_metrics_count_messages_and_operations_across_processes(database_url, redis_server, processes, tmp_path):
    redis = redis_server()
    port = free_port()
    prom_dir = tmp_path / "prom"
    prom_dir.mkdir()
    env = tenure_env(
        database_url,
        redis.url,
        TENURE_WORKER_METRICS_PORT=str(port),
        dramatiq_prom_host="127.0.0.1",
        dramatiq_prom_db=str(prom_dir),
    )
    worker = processes.tenure("worker", "worker", "--processes", "2", "--threads", "2", env=env)
    wait_for_port(port, proc=worker)

    with TestClient(create_app(Settings(database_url=database_url, broker_url=redis.url, **UNLIMITED))) as api:
        owner = builders.person(api)
        org = builders.organization(api, owner)
        builders.fund(api, owner, org, 10_000)  # six domains, not the hosting after them
        ops = [buy(api, owner, org, f"metric{i}.fr").json()["id"] for i in range(6)]
        failed = buy(api, owner, org, "toolong.fr", years=10, kind="hosting").json()["id"]
        statuses = [wait_done(api, owner, op)["status"] for op in [*ops, failed]]
    assert statuses == ["succeeded"] * 6 + ["failed"]

    deadline = time.monotonic() + 10
    while True:
        text = httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text
        done = total(text, "tenure_operations_finished_total", kind="purchase")
        if done >= 7 or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    assert total(text, "tenure_operations_finished_total", kind="purchase", status="succeeded") == 6
    assert total(text, "tenure_operations_finished_total", kind="purchase", status="failed") == 1
    assert total(text, "dramatiq_messages_total", actor_name="purchases.execute") >= 7
    assert total(text, "tenure_operation_duration_seconds_count", kind="purchase", status="succeeded") == 6
