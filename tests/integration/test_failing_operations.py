"""An operation whose handler keeps raising ends `failed`, by Dramatiq's retries or by the relay.

The failing operation is a purchase whose stored params lack `payment_method`: the real
`purchases.execute` actor, through `worker.execution.run_operation`, raises ValidationError on
every attempt (an unexpected exception, not a business failure).
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from dramatiq import Message

from runtime.clock import clock
from runtime.settings import Settings
from tables import events, operation_inserts, operations
from tests.api import builders
from tests.integration.flows import db, wait_done
from tests.integration.test_ops import OPS, wait_for
from tests.ratelimits import UNLIMITED
from worker.execution import Bounds
from worker.queue import operation_message
from worker.relay import relay

MAX_ATTEMPTS = 3
MAX_AGE_S = 3600
STALL_S = 2


@pytest.fixture
def settings(database_url, redis_url):
    return Settings(
        database_url=database_url,
        broker_url=redis_url,
        ops_token="ops-secret",
        relay_stall_seconds=STALL_S,
        allow_private_webhook_urls=True,
        operation_max_attempts=MAX_ATTEMPTS,
        operation_max_age_seconds=MAX_AGE_S,
        **UNLIMITED,
    )


def broken_purchase(org: str, **fields) -> str:
    """A purchase whose stored params make the handler raise ValidationError (no `payment_method`) every time."""
    row = operations.new_row("purchase", org, clock.now(), enqueued_at=clock.now(), **fields)
    row["params"] = {"kind": "domain", "name": "broken.fr", "years": 1}  # as no intake would store them
    db(operation_inserts.insert_or_get(row))
    return row["id"]


def relay_once(sender) -> int:
    return asyncio.run(relay(sender, STALL_S, Bounds(MAX_ATTEMPTS, MAX_AGE_S)))


def ops_view(api, key: str) -> dict:
    answer = api.get(f"/v1/ops/operations/{key}", headers=OPS)
    assert answer.status_code == 200, answer.text
    return answer.json()


def assert_tenant_sees_only_code_message_and_reference(api, owner, op: dict) -> str:
    assert op["status"] == "failed"
    assert op["error"]["code"] == "internal_error"
    reference = next(word.rstrip(".") for word in op["error"]["message"].split() if word.startswith("ref_"))
    body = api.get(f"/v1/operations/{op['id']}", headers=owner.auth).text
    for secret in ("Traceback", "ValidationError", "payment_method", "purchases.py", 'attempts"'):
        assert secret not in body
    return reference


def failed_events(org: str) -> list[dict]:
    return db(events.of(org, "operation.failed"))


def test_an_operation_that_keeps_raising_ends_failed_after_its_attempts(api, workers, broker):
    owner, org = builders.funded(api, 10_000)
    workers()
    op_id = broken_purchase(org)
    broker.enqueue(operation_message("purchase", op_id))

    op = wait_done(api, owner, op_id, timeout=30)

    reference = assert_tenant_sees_only_code_message_and_reference(api, owner, op)
    assert f"after {MAX_ATTEMPTS} attempts" in op["error"]["message"]
    seen = ops_view(api, reference)
    assert seen["id"] == op_id and seen["reference"] == reference
    assert seen["attempts"] == MAX_ATTEMPTS
    assert seen["failure"]["type"] == "msgspec.ValidationError"
    assert seen["failure"]["attempts"] == MAX_ATTEMPTS
    assert "payment_method" in seen["failure"]["message"]
    assert "Traceback" in seen["failure"]["traceback"] and "purchases.py" in seen["failure"]["traceback"]
    assert ops_view(api, op_id)["reference"] == reference
    [event] = failed_events(org)
    assert event["operation_id"] == op_id
    assert event["data"]["error"] == op["error"]
    wait_for(lambda: failed_events(org)[0]["dispatched_at"])  # fanned out to webhook endpoints
    page = api.get(f"/ops/operations?q={reference}", headers=OPS)
    assert page.status_code == 200
    assert op_id in page.text and "ValidationError" in page.text and "Traceback" in page.text
    dashboard = api.get("/ops", headers=OPS).text
    assert reference in dashboard and f"/ops/operations?q={op_id}" in dashboard
    time.sleep(2.5)  # a Dramatiq retry would have come by now: there is none, and no dead letter
    assert ops_view(api, op_id)["attempts"] == MAX_ATTEMPTS
    assert api.get("/v1/ops/dead-letters", headers=OPS).json() == []


def test_an_operation_that_keeps_raising_in_a_message_naming_others_fails_alone(api, workers, broker):
    owner, org = builders.funded(api, 10_000)
    workers()
    broken = broken_purchase(org)
    good = [operations.new_row("purchase", org, clock.now(), enqueued_at=clock.now()) for _ in range(2)]
    for n, row in enumerate(good):
        row["params"] = {"kind": "domain", "name": f"good-{n}.fr", "years": 1, "payment_method": "prepaid"}
        db(operation_inserts.insert_or_get(row))
    broker.enqueue(operation_message("purchase", [good[0]["id"], broken, good[1]["id"]]))

    done = {op_id: wait_done(api, owner, op_id, timeout=30) for op_id in (broken, good[0]["id"], good[1]["id"])}

    assert [op["status"] for op in done.values()] == ["failed", "succeeded", "succeeded"]
    assert_tenant_sees_only_code_message_and_reference(api, owner, done[broken])
    assert f"after {MAX_ATTEMPTS} attempts" in done[broken]["error"]["message"]
    assert ops_view(api, broken)["attempts"] == MAX_ATTEMPTS  # retried on its own, not with the others
    assert [ops_view(api, row["id"])["attempts"] for row in good] == [1, 1]
    assert [event["operation_id"] for event in failed_events(org)] == [broken]


def test_an_operation_tried_and_past_its_age_ends_failed_at_its_next_retry(api, workers, broker, real_clock):
    owner, org = builders.funded(api, 10_000)
    workers()
    op_id = broken_purchase(org)
    broker.enqueue(operation_message("purchase", op_id))
    wait_for(lambda: ops_view(api, op_id)["failure"])  # the first attempt raised; a retry is coming

    real_clock.advance(timedelta(seconds=MAX_AGE_S + 1))
    op = wait_done(api, owner, op_id, timeout=30)

    reference = assert_tenant_sees_only_code_message_and_reference(api, owner, op)
    assert "after 1 attempt;" in op["error"]["message"]
    seen = ops_view(api, reference)
    assert seen["failure"]["type"] == "msgspec.ValidationError" and seen["failure"]["attempts"] == 1
    assert len(failed_events(org)) == 1


def test_the_relay_fails_an_operation_past_its_age_instead_of_sending_it_again(
    api, workers, broker, sender, real_clock
):
    owner, org = builders.funded(api, 10_000)
    workers()
    op_id = broken_purchase(org)
    broker.enqueue(
        Message(
            queue_name="operations",
            actor_name="purchases.execute",
            args=(op_id,),
            kwargs={},
            options={"max_retries": 0},
        )
    )  # Dramatiq gives up at once
    # The details are written into the letter just after Dramatiq dead-letters it: wait for them.
    [letter] = wait_for(
        lambda: [one for one in api.get("/v1/ops/dead-letters", headers=OPS).json() if one.get("traceback")]
    )
    assert ops_view(api, op_id)["status"] == "running"  # what the relay used to send again forever

    real_clock.advance(timedelta(seconds=MAX_AGE_S + 1))
    sent = relay_once(sender)

    assert sent == 0
    op = wait_done(api, owner, op_id, timeout=5)
    reference = assert_tenant_sees_only_code_message_and_reference(api, owner, op)
    seen = ops_view(api, reference)
    assert seen["failure"]["type"] == "msgspec.ValidationError" and seen["attempts"] == 1
    [event] = failed_events(org)
    assert event["dispatched_at"] is not None  # fanned out by the relay
    assert relay_once(sender) == 0


def test_the_relay_fails_an_operation_whose_attempts_ran_out_without_an_exception(api, sender, real_clock):
    owner, org = builders.funded(api, 10_000)
    # Three deliveries started it and their workers died (SIGKILL, time limit): nothing recorded.
    op_id = broken_purchase(org, status="running", attempts=MAX_ATTEMPTS)
    real_clock.advance(timedelta(seconds=STALL_S + 1))

    assert relay_once(sender) == 0

    op = wait_done(api, owner, op_id, timeout=5)
    reference = assert_tenant_sees_only_code_message_and_reference(api, owner, op)
    seen = ops_view(api, reference)
    assert seen["failure"]["type"] is None
    assert seen["failure"]["message"].startswith("no exception recorded")
    assert seen["failure"]["attempts"] == MAX_ATTEMPTS


def test_a_dead_letter_shows_its_exception_traceback_and_retries(api, workers, broker):
    workers()
    broker.enqueue(
        Message(
            queue_name="operations",
            actor_name="purchases.execute",
            args=(),
            kwargs={},
            options={"max_retries": 1, "min_backoff": 10, "max_backoff": 20},
        )
    )

    # The details are written into the letter just after Dramatiq dead-letters it: wait for them.
    [letter] = wait_for(
        lambda: [one for one in api.get("/v1/ops/dead-letters", headers=OPS).json() if one.get("traceback")]
    )

    assert letter["actor"] == "purchases.execute" and letter["args"] == []
    assert letter["retries"] == 2  # Dramatiq's count: the first run and its one retry both failed
    assert letter["error"].startswith("TypeError") and "operation_id" in letter["error"]
    assert letter["traceback"].startswith("Traceback") and letter["error"] in letter["traceback"]
    page = api.get("/ops", headers=OPS).text
    assert f'data-testid="dead-letter-{letter["message_id"]}-traceback">Traceback' in page


def test_ops_look_operations_up_by_id_or_reference_and_404_otherwise(api):
    owner = builders.person(api)
    assert api.get("/v1/ops/operations/ref_nothing", headers=OPS).status_code == 404
    assert api.get("/v1/ops/operations/op_nothing", headers=OPS).status_code == 404
    assert api.get("/v1/ops/operations/op_nothing", headers=owner.auth).status_code == 401
    assert api.get("/ops/operations?q=ref_nothing", headers=OPS).status_code == 404
    assert "tenure ops" in api.get("/ops/operations?q=ref_nothing").text  # the sign-in form
    assert api.get("/ops/operations?q=ref_nothing").status_code == 401
