"""Retention: every promise kept for its window, then forgotten by the daily job in small batches."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import msgspec
from prometheus_client.parser import text_string_to_metric_families

from runtime.clock import clock
from runtime.ids import new_id
from tables import leases, operations
from tables.events import Event
from tables.inbound import InboundMessage
from tables.ledger import LedgerEntry
from tables.operations import Operation
from tables.organizations import Organization
from tables.sweeps import SweepRun
from tables.webhooks import Delivery, DeliveryAttempt
from tests.api import builders
from tests.integration.flows import buy, charges_for, db, wait_done
from tests.integration.test_inbound import post, reseller, rotate, upsert
from tests.integration.test_ops import wait_for
from tests.integration.test_webhooks_out import settle, subscribe
from worker import retention
from worker.webhooks.fanout import fan_out

T0 = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def run_retention(settings) -> dict[str, int] | None:
    return db(retention.run(settings))


def top_up(api, who, org: str, amount: int, key: str | None = None) -> dict:
    headers = {**who.auth, **({"Idempotency-Key": key} if key else {})}
    answer = api.post(
        f"/v1/organizations/{org}/funds", headers=headers, json={"amount": {"amount": amount, "currency": "EUR"}}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def operation_status(api, who, op_id: str) -> int:
    return api.get(f"/v1/operations/{op_id}", headers=who.auth).status_code


def ledger() -> list[dict]:
    return db(LedgerEntry.select().order_by(LedgerEntry.id).run())


# --- the HTTP contract's windows -------------------------------------------------------------


def test_an_idempotency_key_older_than_24_hours_makes_a_new_operation_a_younger_one_the_first(api, workers, settings):
    workers()
    clock.pin(T0)
    owner = builders.person(api)
    org = builders.organization(api, owner)
    old_topup = top_up(api, owner, org, 10_000, key="topup-old")
    old_purchase = buy(api, owner, org, "old.fr", kind="mailbox", key="buy-old").json()
    assert wait_done(api, owner, old_purchase["id"])["status"] == "succeeded"
    clock.pin(T0 + timedelta(hours=20))
    young_topup = top_up(api, owner, org, 500, key="topup-young")

    clock.pin(T0 + timedelta(hours=25))
    run_retention(settings)

    again_old = top_up(api, owner, org, 10_000, key="topup-old")
    again_young = top_up(api, owner, org, 500, key="topup-young")
    assert again_old["operation_id"] != old_topup["operation_id"]
    assert again_young["operation_id"] == young_topup["operation_id"]
    assert again_old["balance"]["amount"] == 10_000 - 2400 + 500 + 10_000
    rebuy = buy(api, owner, org, "old.fr", kind="mailbox", key="buy-old")
    assert rebuy.status_code == 202
    assert rebuy.json()["id"] != old_purchase["id"]
    assert wait_done(api, owner, rebuy.json()["id"])["status"] == "succeeded"
    assert charges_for(org) == [2400, 2400]
    # the first operations themselves are still there (their own window is 90 days)
    assert operation_status(api, owner, old_purchase["id"]) == 200


def test_a_webhook_id_older_than_7_days_makes_a_new_operation_a_younger_one_the_first(api, workers, settings):
    workers()
    clock.pin(T0)
    owner, org = reseller(api)
    secret = rotate(api, owner, org)["secret"]
    first = post(api, org, secret, upsert("old-ref"), msg_id="wh-old")
    assert first.status_code == 202, first.text
    wait_done(api, owner, first.json()["operation"]["id"])
    clock.pin(T0 + 6 * DAY)
    second = post(api, org, secret, upsert("young-ref"), msg_id="wh-young")
    assert second.status_code == 202, second.text
    wait_done(api, owner, second.json()["operation"]["id"])

    clock.pin(T0 + 8 * DAY)  # the old id is 8 days old, the young one 2 (its key: past 24 h)
    run_retention(settings)

    resent_old = post(api, org, secret, upsert("old-ref"), msg_id="wh-old")
    resent_young = post(api, org, secret, upsert("young-ref"), msg_id="wh-young")
    assert resent_old.status_code == 202, resent_old.text
    assert resent_old.json()["operation"]["id"] != first.json()["operation"]["id"]
    assert resent_young.status_code == 200, resent_young.text
    assert resent_young.json()["operation"]["id"] == second.json()["operation"]["id"]


# --- operations, events, deliveries ----------------------------------------------------------


def test_finished_operations_go_after_90_days_unfinished_ones_stay_whatever_their_age(api, workers, sender, settings):
    workers()
    clock.pin(T0)
    owner = builders.person(api)
    org = builders.organization(api, owner)
    topup = top_up(api, owner, org, 10_000)
    purchase = buy(api, owner, org, "kept.fr").json()["id"]
    product_id = wait_done(api, owner, purchase)["result"]["product_id"]
    broke_owner = builders.person(api)
    broke = builders.organization(api, broke_owner)
    failed = buy(api, broke_owner, broke, "nofunds.fr").json()["id"]
    assert wait_done(api, broke_owner, failed)["status"] == "failed"
    stuck = operations.new_row("renewal", org, T0, status="running", product_id=product_id)
    db(Operation.insert(Operation(**stuck)).run())
    db(fan_out(sender))  # the scheduler's webhook tick: the events are fanned out (no endpoint)
    clock.pin(T0 + 60 * DAY)
    recent = top_up(api, owner, org, 100)
    product_before = api.get(f"/v1/products/{product_id}", headers=owner.auth).json()
    ledger_before = ledger()
    activity_before = api.get(f"/v1/organizations/{org}/activity", headers=owner.auth).json()["items"]

    clock.pin(T0 + 91 * DAY)
    deleted = run_retention(settings)

    for op_id in (topup["operation_id"], purchase):
        assert operation_status(api, owner, op_id) == 404
    assert operation_status(api, broke_owner, failed) == 404
    assert operation_status(api, owner, recent["operation_id"]) == 200
    still = api.get(f"/v1/operations/{stuck['id']}", headers=owner.auth)
    assert still.status_code == 200 and still.json()["status"] == "running"
    assert deleted["operations"] == 3
    assert api.get(f"/v1/products/{product_id}", headers=owner.auth).json() == product_before
    assert ledger() == ledger_before
    assert (
        api.get(f"/v1/organizations/{org}/billing", headers=owner.auth).json()["balance"]["amount"]
        == 10_000 - 1500 + 100
    )
    # The audit record outlives the operations it names: retention never deletes it.
    assert api.get(f"/v1/organizations/{org}/activity", headers=owner.auth).json()["items"] == activity_before
    assert {r["operation_id"] for r in activity_before} >= {topup["operation_id"], purchase}
    assert [r["kind"] for r in activity_before if r["operation_id"] == purchase] == [
        "operation.succeeded",
        "operation.accepted",
    ]


def test_deliveries_and_events_go_30_days_after_their_last_attempt_pending_ones_stay(
    api, workers, broker, sender, settings, receiver
):
    workers()
    now = datetime.now(UTC).replace(microsecond=0)  # deliveries are signed with tenure's clock
    clock.pin(now)
    owner, org = builders.funded(api, 100_000)
    ok = subscribe(api, owner, org, receiver, "/ok")
    down = subscribe(api, owner, org, receiver, "/down", ["product.purchased"])
    receiver.behaviour = lambda path, wid, n: (503, {}) if path == "/down" else (200, {})
    op = buy(api, owner, org, "hooked.fr").json()["id"]
    product_id = wait_done(api, owner, op)["result"]["product_id"]
    settle(broker, sender)

    def deliveries(endpoint: str) -> list[dict]:
        answer = api.get(f"/v1/organizations/{org}/webhook-endpoints/{endpoint}/deliveries", headers=owner.auth)
        assert answer.status_code == 200, answer.text
        return answer.json()["items"]

    assert {d["status"] for d in deliveries(ok)} == {"succeeded"} and len(deliveries(ok)) >= 2
    pending = deliveries(down)
    assert [d["status"] for d in pending] == ["pending"] and len(pending[0]["attempt_log"]) == 1
    ledger_before = ledger()
    product_before = api.get(f"/v1/products/{product_id}", headers=owner.auth).json()

    clock.pin(now + 29 * DAY)
    run_retention(settings)
    assert len(deliveries(ok)) >= 2  # not yet

    clock.pin(now + 31 * DAY)
    deleted = run_retention(settings)

    assert deliveries(ok) == []
    assert deliveries(down) == pending  # pending: kept with its attempt, whatever its age
    kept = db(Event.select(Event.type).where(Event.organization_id == org).run())
    assert [e["type"] for e in kept] == ["product.purchased"]  # its delivery is still pending
    assert deleted["deliveries"] >= 2 and deleted["delivery_attempts"] == deleted["deliveries"]
    assert deleted["events"] >= 1
    assert ledger() == ledger_before
    assert api.get(f"/v1/products/{product_id}", headers=owner.auth).json() == product_before

    clock.pin(now + 91 * DAY)
    run_retention(settings)
    assert operation_status(api, owner, op) == 200  # an event still names it


# --- batches, metrics, the lease -------------------------------------------------------------


async def named_organization(org: str, at: datetime) -> None:
    """The organization the rows name (they reference it), made once."""
    await Organization.insert(Organization(id=org, name=org, currency="EUR", created_at=at)).on_conflict(
        action="DO NOTHING"
    )


def expired_rows(org: str, at: datetime, count: int, prefix: str) -> None:
    """`count` finished operations with a key, their inbound ids, events fanned out, one
    finished delivery each with two attempts: all dated `at`."""

    async def insert() -> None:
        await named_organization(org, at)
        for i in range(count):
            op = operations.new_row("topup", org, at, status="succeeded", finished_at=at, idem_key=f"{org}:{prefix}{i}")
            await Operation.insert(Operation(**op))
            await InboundMessage.insert(
                InboundMessage(message_key=f"{org}:{prefix}{i}", operation_id=op["id"], received_at=at)
            )
            event_id = new_id("evt")
            await Event.insert(
                Event(
                    id=event_id,
                    type="operation.succeeded",
                    organization_id=org,
                    operation_id=op["id"],
                    data={},
                    created_at=at,
                    dispatched_at=at,
                )
            )
            delivery_id = new_id("dlv")
            await Delivery.insert(
                Delivery(
                    id=delivery_id,
                    endpoint_id="whe_gone",
                    event_id=event_id,
                    delivery_key=f"whe_gone:{event_id}",
                    status="succeeded",
                    attempts=2,
                    created_at=at,
                    updated_at=at,
                )
            )
            for _ in range(2):
                await DeliveryAttempt.insert(
                    DeliveryAttempt(id=new_id("att"), delivery_id=delivery_id, attempted_at=at, status_code=200)
                )

    db(insert())


def kept_on_purpose(org: str, at: datetime, count: int) -> None:
    """`count` finished operations named by an event whose delivery is still pending: all stay."""

    async def insert() -> None:
        await named_organization(org, at)
        for _ in range(count):
            op = operations.new_row("renewal", org, at, status="succeeded", finished_at=at)
            await Operation.insert(Operation(**op))
            event_id = new_id("evt")
            await Event.insert(
                Event(
                    id=event_id,
                    type="product.renewed",
                    organization_id=org,
                    operation_id=op["id"],
                    data={},
                    created_at=at,
                    dispatched_at=at,
                )
            )
            await Delivery.insert(
                Delivery(
                    id=new_id("dlv"),
                    endpoint_id="whe_down",
                    event_id=event_id,
                    delivery_key=f"whe_down:{event_id}",
                    status="pending",
                    attempts=9,
                    next_attempt_at=at,
                    created_at=at,
                    updated_at=at,
                )
            )

    db(insert())


def counts() -> dict[str, int]:
    async def count() -> dict[str, int]:
        return {
            "operations": await Operation.count(),
            "idempotency_keys": await Operation.count().where(Operation.idem_key.is_not_null()),
            "inbound_messages": await InboundMessage.count(),
            "events": await Event.count(),
            "deliveries": await Delivery.count(),
            "delivery_attempts": await DeliveryAttempt.count(),
        }

    return db(count())


EVERY_TABLE_ONE = {
    "operations": 1,
    "idempotency_keys": 1,
    "inbound_messages": 1,
    "events": 1,
    "deliveries": 1,
    "delivery_attempts": 2,
}


def test_small_batches_delete_everything_due_and_metrics_count_it(api, settings):
    run_at = T0 + 91 * DAY
    kept_on_purpose("org_batch", T0 - DAY, 4)  # the oldest rows, read by every batch's index scan
    expired_rows("org_batch", T0, 10, "old")
    expired_rows("org_batch", run_at - timedelta(hours=2), 1, "young")
    clock.pin(run_at)
    small = msgspec.structs.replace(settings, retention_batch_size=3)

    deleted = run_retention(small)

    assert deleted == {
        "delivery_attempts": 20,
        "deliveries": 10,
        "events": 10,
        "inbound_messages": 10,
        "idempotency_keys": 10,
        "idempotent_responses": 0,
        "operations": 10,
    }
    assert counts() == EVERY_TABLE_ONE | {"operations": 5, "events": 5, "deliveries": 5}
    runs = db(SweepRun.select(SweepRun.job, SweepRun.items).where(SweepRun.job == "retention").run())
    assert runs == [{"job": "retention", "items": 70}]

    def scraped() -> str | None:
        text = api.get("/metrics").text
        return text if 'tenure_retention_deleted_rows_total{table="operations"} 10.0' in text else None

    text = wait_for(scraped)
    assert 'tenure_retention_deleted_rows_total{table="delivery_attempts"} 20.0' in text
    assert 'tenure_retention_deleted_rows_total{table="idempotency_keys"} 10.0' in text
    ages = {
        sample.labels["table"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "tenure_retention_oldest_age_seconds"
        for sample in family.samples
    }
    kept_for_a_pending_delivery = (91 + 1) * 86400.0
    assert ages == {
        "operations": kept_for_a_pending_delivery,
        "events": kept_for_a_pending_delivery,
        "deliveries": kept_for_a_pending_delivery,
        "idempotency_keys": 7200.0,
        "inbound_messages": 7200.0,
        "delivery_attempts": 7200.0,
    }

    clock.pin(run_at + DAY)
    assert run_retention(small) == dict.fromkeys(deleted, 0) | {"idempotency_keys": 1}


def test_two_concurrent_runs_do_the_work_once(settings):
    expired_rows("org_twins", T0, 30, "twin")
    clock.pin(T0 + 91 * DAY)
    tiny = msgspec.structs.replace(settings, retention_batch_size=2)
    start = threading.Barrier(2)

    def one_run(_) -> dict[str, int] | None:
        start.wait()
        return asyncio.run(retention.run(tiny))

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(one_run, range(2)))

    assert results.count(None) == 1, results  # the second found the job leased
    (done,) = [r for r in results if r is not None]
    assert done["operations"] == 30 and done["delivery_attempts"] == 60
    assert counts() == dict.fromkeys(EVERY_TABLE_ONE, 0)
    runs = db(SweepRun.select(SweepRun.items).where(SweepRun.job == "retention").run())
    assert runs == [{"items": 210}]


def test_a_run_while_another_scheduler_holds_the_lease_waits_until_the_lease_runs_out(settings):
    expired_rows("org_lease", T0, 2, "held")
    now = T0 + 91 * DAY
    clock.pin(now)
    assert db(leases.take(retention.JOB, "other-scheduler", now, now + retention.LEASE))

    assert run_retention(settings) is None
    assert counts()["operations"] == 2

    clock.pin(now + retention.LEASE + timedelta(seconds=1))  # the other one died
    assert run_retention(settings)["operations"] == 2
    assert counts()["operations"] == 0
