"""A bulk renewal of 1,000 products across processes: a worker SIGKILLed mid-batch leaves every
item renewed (or refused) exactly once, and the batch reports each one."""

from __future__ import annotations

import signal
import time
from collections import Counter
from datetime import timedelta

import pytest
from litestar.testing import TestClient

from rules import schedule
from rules.catalog import DEFAULT_CATALOG
from rules.lifecycle import add_years, rfc3339
from runtime.clock import clock
from runtime.settings import Settings
from tables import products
from tables.engine import transaction
from tables.events import Event
from tables.ledger import LedgerEntry
from tables.operations import Operation
from tables.products import Product
from tests.api import builders
from tests.e2e.conftest import tenure_env
from tests.e2e.test_worker_crash import unacked_messages
from tests.integration.flows import balance, db, ledger_sums
from web.app import create_app

ITEMS = 1000
STALE_EVERY = 100  # 10 items carry a guard that is no longer the product's expiry
FUNDS = 2 * ITEMS * 1500
STALL_S = 2
KILL_AFTER = 100  # renewed items before the worker is killed


async def seed_products(org: str, count: int) -> list[dict]:
    """`count` domains of `org`, written as purchases.execute writes them (buying 1,000 through
    workers first would be most of the run; purchases have their own crash test)."""
    kind = DEFAULT_CATALOG["domain"]
    now = clock.now()
    expires_at = (now + timedelta(days=200)).replace(microsecond=0)
    plan = schedule.for_product(kind, expires_at, True, now).as_columns()
    async with transaction():
        for index in range(count):
            await products.insert(
                kind="domain",
                name=f"bulk-{index:04d}.fr",
                organization_id=org,
                client_id=None,
                reseller_id=None,
                expires_at=expires_at,
                now=now,
                schedule=plan,
            )
    return await Product.select(Product.id, Product.expires_at).where(Product.organization == org).order_by(Product.id)


def children(batch_id: str) -> list[dict]:
    return db(
        Operation.select(Operation.id, Operation.product_id, Operation.status, Operation.error_code, Operation.result)
        .where(Operation.parent_id == batch_id)
        .output(load_json=True)
        .run()
    )


def child_statuses(batch_id: str) -> Counter:
    return Counter(
        row["status"] for row in db(Operation.select(Operation.status).where(Operation.parent_id == batch_id).run())
    )


def batch_status(batch_id: str) -> str:
    return db(Operation.select(Operation.status).where(Operation.id == batch_id).first().run())["status"]


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_thousand_item_bulk_renewal_survives_a_killed_worker_and_charges_each_item_once(
    database_url, redis_server, processes
):
    redis = redis_server()
    settings = Settings(database_url=database_url, broker_url=redis.url)
    env = tenure_env(database_url, redis.url, TENURE_RELAY_STALL_SECONDS=str(STALL_S))

    with TestClient(create_app(settings)) as api:
        owner, org = builders.funded(api, FUNDS)
        seeded = db(seed_products(org, ITEMS))
        assert len(seeded) == ITEMS
        stale = {row["id"] for index, row in enumerate(seeded) if index % STALE_EVERY == STALE_EVERY - 1}
        items = [
            {
                "product_id": row["id"],
                "years": 1,
                "payment_method": "prepaid",
                "current_expires_at": rfc3339(
                    row["expires_at"] - timedelta(days=1) if row["id"] in stale else row["expires_at"]
                ),
            }
            for row in seeded
        ]

        answer = api.post(f"/v1/organizations/{org}/renewals", json={"items": items}, headers=owner.auth)
        assert answer.status_code == 202, answer.text
        batch_id = answer.json()["id"]
        started = time.monotonic()

        first = processes.tenure("worker", "worker", "--processes", "1", "--threads", "8", env=env)
        deadline = time.monotonic() + 120
        while True:
            assert first.alive(), f"the first worker died on its own\n{first.tail()}"
            assert time.monotonic() < deadline, (
                f"never {KILL_AFTER} renewed: {child_statuses(batch_id)}\n{first.tail()}"
            )
            # Kill while it holds work: some messages taken from Redis and not acknowledged yet.
            if child_statuses(batch_id)["succeeded"] >= KILL_AFTER and unacked_messages(redis.client()):
                first.kill(signal.SIGKILL)  # the whole group: main and worker processes
                first.popen.wait(timeout=10)
                break
            time.sleep(0.05)
        time.sleep(0.2)
        at_kill = {
            "children": dict(child_statuses(batch_id)),
            "batch": batch_status(batch_id),
            "unacked": unacked_messages(redis.client()),
        }
        print(f"\nworker killed after {time.monotonic() - started:.1f}s: {at_kill}")
        assert at_kill["batch"] == "running"
        assert at_kill["children"].get("succeeded", 0) < ITEMS - len(stale), at_kill

        second = processes.tenure("worker", "worker", "--processes", "1", "--threads", "8", env=env)
        scheduler = processes.tenure("scheduler", "scheduler", env=env)  # the relay, as deployed
        deadline = time.monotonic() + 600
        while batch_status(batch_id) != "succeeded":
            dead = [proc.name for proc in (second, scheduler) if not proc.alive()]
            assert not dead, f"{dead} died\n{processes.tails()}"
            assert time.monotonic() < deadline, f"batch still running: {child_statuses(batch_id)}\n{processes.tails()}"
            time.sleep(0.5)
        print(f"batch finished after {time.monotonic() - started:.1f}s")

        batch = api.get(f"/v1/operations/{batch_id}", headers=owner.auth).json()
        result = batch["result"]
        assert (result["total_items"], result["renewed_items"], result["failed_items"]) == (
            ITEMS,
            ITEMS - len(stale),
            len(stale),
        )
        outcomes = {o["product_id"]: o for o in result["items"]}
        assert [o["product_id"] for o in result["items"]] == [row["id"] for row in seeded]
        assert {pid for pid, o in outcomes.items() if o["status"] == "failed"} == stale
        assert {o["error"]["code"] for pid, o in outcomes.items() if pid in stale} == {"expiry_mismatch"}

        # One child per product, each finished once, as the batch reports it.
        kids = children(batch_id)
        assert sorted(k["product_id"] for k in kids) == sorted(row["id"] for row in seeded)
        assert {k["id"]: k["status"] for k in kids} == {o["operation_id"]: o["status"] for o in outcomes.values()}

        # Every renewed product moved exactly one year; the stale ones did not move.
        after = {
            row["id"]: row["expires_at"]
            for row in db(Product.select(Product.id, Product.expires_at).where(Product.organization == org).run())
        }
        for row in seeded:
            wanted = row["expires_at"] if row["id"] in stale else add_years(row["expires_at"], 1)
            assert after[row["id"]] == wanted, (row, after[row["id"]])

        # The sums: one revenue entry per renewed child, equal to its price; nothing else charged.
        renewed = {k["id"]: k for k in kids if k["status"] == "succeeded"}
        revenue = db(
            LedgerEntry.select(LedgerEntry.operation_id, LedgerEntry.amount)
            .where((LedgerEntry.organization_id == org) & (LedgerEntry.book == "revenue"))
            .run()
        )
        per_op = Counter(entry["operation_id"] for entry in revenue)
        assert set(per_op) == set(renewed) and set(per_op.values()) == {1}, (
            f"charged twice: {[op for op, n in per_op.items() if n > 1][:5]}"
        )
        for entry in revenue:
            assert entry["amount"] == renewed[entry["operation_id"]]["result"]["price"]["amount"], entry
        charged = sum(entry["amount"] for entry in revenue)
        assert balance(api, owner, org) == FUNDS - charged
        assert ledger_sums() == {"EUR": 0}
        print(f"charged {charged} for {len(renewed)} renewals: {dict(Counter(e['amount'] for e in revenue))}")

        events = db(Event.select(Event.type, Event.operation_id).where(Event.organization_id == org).run())
        renewed_events = Counter(e["operation_id"] for e in events if e["type"] == "product.renewed")
        assert set(renewed_events) == set(renewed) and set(renewed_events.values()) == {1}
        failed_events = Counter(e["operation_id"] for e in events if e["type"] == "operation.failed")
        assert sum(failed_events.values()) == len(stale) and set(failed_events.values()) == {1}
        assert Counter(e["operation_id"] for e in events if e["type"] == "operation.succeeded")[batch_id] == 1
