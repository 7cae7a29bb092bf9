"""One grep follows a purchase from the request to its webhook, across processes, in JSON logs."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.api import builders
from tests.e2e.conftest import free_port, tenure_env, wait_for_port
from tests.integration.flows import buy, wait_done
from tests.integration.receiver import Receiver


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_every_log_line_of_an_operation_carries_its_id(database_url, redis_server, processes):
    redis = redis_server()
    port = free_port()
    env = tenure_env(
        database_url, redis.url, TENURE_ALLOW_PRIVATE_WEBHOOK_URLS="1", TENURE_WORKER_METRICS_PORT=str(free_port())
    )
    web = processes.tenure("web", "web", "--port", str(port), env=env)
    worker = processes.tenure("worker", "worker", "--processes", "1", "--threads", "2", env=env)
    scheduler = processes.tenure("scheduler", "scheduler", env=env)
    wait_for_port(port, proc=web)
    receiver = Receiver()
    base = receiver.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as api:
            owner, org = builders.funded(api, 10_000)
            hook = api.post(
                f"/v1/organizations/{org}/webhook-endpoints",
                headers=owner.auth,
                json={"url": base + "/hook", "event_types": ["product.purchased"]},
            ).json()
            receiver.secrets["/hook"] = hook["secret"]
            op_id = buy(api, owner, org, "grep.fr").json()["id"]
            assert wait_done(api, owner, op_id)["status"] == "succeeded"
            refused_id = buy(api, owner, org, "grep-invoiced.fr", payment_method="invoice").json()["id"]
            assert wait_done(api, owner, refused_id)["error"]["code"] == "credit_limit_exceeded"
            deadline = time.monotonic() + 20
            while not receiver.delivered("/hook") and time.monotonic() < deadline:
                time.sleep(0.1)
        assert receiver.delivered("/hook")
    finally:
        receiver.stop()

    def lines_of_the_operation() -> list[dict]:
        return [
            json.loads(line)
            for proc in (web, worker, scheduler)
            for line in proc.output().splitlines()
            if op_id in line and line.startswith("{")
        ]

    # The worker writes its attempt line after the receiver answered.
    expected = {"operation_accepted", "operation_succeeded", "webhook_attempt"}
    deadline = time.monotonic() + 20
    while not expected <= {line["event"] for line in lines_of_the_operation()} and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = lines_of_the_operation()
    events = {line["event"] for line in lines}
    assert expected <= events
    assert all(line["operation_id"] == op_id and line["timestamp"].endswith("Z") for line in lines)
    # A failed operation's line says why, with the code its owner sees.
    failed = [json.loads(line) for line in worker.output().splitlines() if refused_id in line and line.startswith("{")]
    assert {(line["event"], line.get("code")) for line in failed} >= {("operation_failed", "credit_limit_exceeded")}
