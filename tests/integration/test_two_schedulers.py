"""Two schedulers running the same tick against PostgreSQL do what one would."""

from __future__ import annotations

import asyncio
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from runtime.clock import clock
from tables import engine
from tables.events import Event
from tables.operations import Operation
from tables.sweeps import SweepRun
from tests.api import builders
from tests.integration.flows import buy, charges_for, db, wait_done
from worker import sweeps

T0 = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_schedulers_running_the_same_tick_handle_each_due_product_once(api, workers, broker, sender):
    workers()
    clock.pin(T0)
    owner, org = builders.funded(api, 1_000_000)
    ops = [buy(api, owner, org, f"twin{i}.fr").json()["id"] for i in range(40)]
    products = [wait_done(api, owner, op)["result"]["product_id"] for op in ops]
    for product_id in products[20:]:
        assert api.patch(f"/v1/products/{product_id}", json={"autorenew": False}, headers=owner.auth).status_code == 200

    tick = T0 + timedelta(days=365 - 20)  # inside the 30-day reminder and 31-day autorenew windows
    clock.pin(tick)

    def one_scheduler(_: int) -> dict:  # its own event loop and pool, as a `tenure scheduler` process has
        async def once() -> dict:
            await engine.start_pool(4)
            try:
                return await sweeps.run_all(sender)
            finally:
                await engine.close_pool()

        return asyncio.run(once())

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one_scheduler, range(2)))
    for queue in ("lifecycle", "operations"):
        broker.join(queue, interval=10, timeout=60_000)

    reminders = db(Event.select(Event.product_id, Event.data).where(Event.type == "product.expiring").run())
    assert Counter(r["product_id"] for r in reminders) == Counter({p: 1 for p in products})
    renewals = db(Operation.select(Operation.product_id, Operation.status).where(Operation.kind == "renewal").run())
    assert sorted(r["product_id"] for r in renewals) == sorted(products[:20])
    assert {r["status"] for r in renewals} == {"succeeded"}
    assert charges_for(org) == [1500] * 60
    taken = Counter()
    for run in db(SweepRun.select(SweepRun.job, SweepRun.items).run()):
        taken[run["job"]] += run["items"]
    assert (taken["reminders"], taken["autorenew"]) == (40, 20)  # split between the two, never both


def test_scheduler_run_records_are_kept_two_weeks(api, sender):
    from tables.sweeps import SweepRun
    from worker import sweeps

    clock.pin(T0)
    db(sweeps.sweep("states", sender))
    clock.pin(T0 + timedelta(days=10))
    db(sweeps.sweep("states", sender))
    clock.pin(T0 + timedelta(days=15))

    forgotten = db(sweeps.forget_old_runs())

    assert forgotten == 1
    assert [r["started_at"] for r in db(SweepRun.select(SweepRun.started_at).run())] == [T0 + timedelta(days=10)]
