"""Ops endpoints: health, readiness, queues, failing operations, dead letters, metrics."""

from __future__ import annotations

import asyncio
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import asyncpg
from dramatiq import Message
from litestar.testing import TestClient

from runtime.settings import Settings
from tests.api import builders
from tests.integration.flows import buy, wait_done
from tests.ratelimits import UNLIMITED
from web.app import create_app

OPS = {"Authorization": "Bearer ops-secret"}


def poison(broker) -> Message:
    """A message its actor cannot run (missing argument), not to be retried: a dead letter at once."""
    return broker.enqueue(
        Message(queue_name="operations", actor_name="purchases.execute", args=(), kwargs={}, options={"max_retries": 0})
    )


def wait_for(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
    return value


def test_health_and_readiness(api):
    assert api.get("/health").json() == {"status": "ok"}
    ready = api.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_ready_stays_200_while_only_the_broker_is_down_and_reports_it(database_url):
    settings = Settings(database_url=database_url, broker_url="redis://127.0.0.1:1/0", **UNLIMITED)  # nothing listens
    with TestClient(create_app(settings)) as client:
        answer = client.get("/ready")
        broker_down = wait_for(lambda: "tenure_broker_up 0.0" in client.get("/metrics").text)

    assert answer.status_code == 200
    assert answer.json()["status"] == "ready"
    assert answer.json()["checks"] == {"database": "ok", "broker": "down"}
    assert answer.json()["errors"]["broker"].startswith("ConnectionError")
    assert broker_down


def test_ready_answers_503_when_the_database_is_unreachable(api, database_url):
    assert api.get("/ready").status_code == 200
    with database_outage(database_url):
        answer = api.get("/ready")

    assert answer.status_code == 503
    assert answer.json()["checks"] == {"database": "down", "broker": "ok"}
    assert answer.json()["error"] == {"code": "not_ready", "message": "cannot reach: database"}
    assert api.get("/ready").status_code == 200  # back


@contextmanager
def database_outage(database_url: str):
    """The database stops answering: the SQLite file is replaced by a directory; PostgreSQL
    refuses new connections to the database and drops the open ones."""
    if database_url.startswith("sqlite"):
        path = Path(urlparse(database_url).path)
        saved = path.with_suffix(".saved")
        path.rename(saved)
        while True:  # a connection opened meanwhile (the metrics refresher) makes a new, empty file
            try:
                path.mkdir()
                break
            except FileExistsError:
                path.unlink()
        try:
            yield
        finally:
            path.rmdir()
            saved.rename(path)
        return
    name = urlparse(database_url).path.lstrip("/")
    admin = urlunparse(urlparse(database_url)._replace(path="/postgres"))

    async def allow(allowed: bool) -> None:
        conn = await asyncpg.connect(admin, timeout=5)
        try:
            await conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')
            if not allowed:
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = $1 AND pid <> pg_backend_pid()",
                    name,
                )
        finally:
            await conn.close()

    asyncio.run(allow(False))
    try:
        yield
    finally:
        asyncio.run(allow(True))


def test_ops_routes_need_the_ops_token_not_an_account_key(api):
    owner = builders.person(api)
    for path in ("/v1/ops/queues", "/v1/ops/operations", "/v1/ops/dead-letters"):
        assert api.get(path).status_code == 401
        assert api.get(path, headers=owner.auth).status_code == 401
        assert api.get(path, headers=OPS).status_code == 200


def test_queue_depths_count_waiting_messages(api, broker, sender):
    for n in range(3):
        broker.enqueue(
            Message(queue_name="webhooks", actor_name="webhooks.deliver", args=(f"dlv_{n}",), kwargs={}, options={})
        )

    queues = {q["queue"]: q for q in api.get("/v1/ops/queues", headers=OPS).json()}

    assert queues["webhooks"]["waiting"] == 3
    assert queues["operations"]["waiting"] == 0


def test_failed_operations_are_listed_with_their_codes(api, workers):
    workers()
    owner = builders.person(api)
    org = builders.organization(api, owner)
    failed = wait_done(api, owner, buy(api, owner, org, "broke.fr").json()["id"])

    listed = api.get("/v1/ops/operations?status=failed&kind=purchase", headers=OPS).json()["items"]

    assert [(o["id"], o["error"]["code"]) for o in listed] == [(failed["id"], "insufficient_funds")]
    assert api.get("/v1/ops/operations?status=failed&kind=renewal", headers=OPS).json()["items"] == []


def test_a_dead_letter_is_visible_and_can_be_requeued(api, broker, workers):
    workers()
    message = poison(broker)
    letters = wait_for(lambda: api.get("/v1/ops/dead-letters", headers=OPS).json())

    assert [(d["actor"], d["queue"]) for d in letters] == [("purchases.execute", "operations")]
    assert letters[0]["args"] == []  # the poisoned message as it was sent
    before = {q["queue"]: q for q in api.get("/v1/ops/queues", headers=OPS).json()}
    assert before["operations"]["dead_letters"] == 1

    answer = api.post(f"/v1/ops/dead-letters/{letters[0]['message_id']}/requeue", headers=OPS)

    assert answer.status_code == 202
    assert api.post(f"/v1/ops/dead-letters/{letters[0]['message_id']}/requeue", headers=OPS).status_code == 404
    after = {q["queue"]: q for q in api.get("/v1/ops/queues", headers=OPS).json()}
    assert after["operations"]["dead_letters"] == 0
    assert message.message_id


def purchases_counted(text: str) -> tuple[float, float]:
    """(requests, observed durations) of 202 answers to purchases, in a /metrics text."""
    labels = '{app_name="tenure",method="POST",path="/v1/organizations/{org_id}/purchases",status_code="202"}'
    found = {}
    for line in text.splitlines():
        for metric in ("tenure_requests_total", "tenure_request_duration_seconds_count"):
            if line.startswith(metric + labels):
                found[metric] = float(line.rsplit(" ", 1)[1])
    return found.get("tenure_requests_total", 0.0), found.get("tenure_request_duration_seconds_count", 0.0)


def test_metrics_expose_http_operations_and_queues(api, workers):
    owner, org = builders.funded(api, 10_000)
    counted_before = purchases_counted(api.get("/metrics").text)
    op_id = buy(api, owner, org, "metrics.fr").json()["id"]  # no worker yet: it waits

    def scraped(wanted: str, unwanted: str | None = None):
        def check() -> str | None:
            text = api.get("/metrics").text
            return text if wanted in text and (unwanted is None or unwanted not in text) else None

        return check

    waiting = wait_for(scraped('tenure_operations_in_flight{kind="purchase",status="pending"} 1.0'))
    workers()
    wait_done(api, owner, op_id)
    text = wait_for(
        scraped(
            'tenure_operations_finished_total{kind="purchase",status="succeeded"}',
            unwanted='tenure_operations_in_flight{kind="purchase"',
        )
    )

    assert 'tenure_queue_messages{queue="operations",state="waiting"}' in waiting
    assert 'path="/v1/organizations/{org_id}/purchases",status_code="202"' in text
    # The lean path (web.lean_accept) is counted as any request: one more purchase, one more of each.
    assert purchases_counted(text) == tuple(n + 1 for n in counted_before)
    assert "tenure_webhook_deliveries_pending 0.0" in text
    assert "tenure_broker_up 1.0" in text
