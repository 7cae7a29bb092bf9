"""test_clocks.advance: a sandbox organization's clock moves forward, and its products live
through everything that was due in between, in order.

The walk repeats one step until the target: the next instant at which something is due
(the earliest next_*_at of the organization's products, which the sweeps' own rules set,
or the daily tier run at which a charge leaves the 12-month volume), the clock jumped there, and
the sweeps' actors run on the due products with that instant as their `now`: state
changes first, then reminders, then autorenew attempts (as `worker.sweeps.run_all`
orders them), then the tier. Each step's events are then delivered one at a time, oldest
first, so an endpoint receives them in the order of simulated time.

A run holds a lease on the organization's clock (a message sent twice runs once) and
keeps the operation stamped (the relay leaves it alone). The clock is saved after each
step and every effect is keyed (event dedupe keys, autorenew idempotency keys), so a run
that crashed is taken up where it stopped by the relay's next message.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import structlog

from rules import schedule
from rules import webhooks as hooks
from rules.lifecycle import add_years, rfc3339
from rules.operations import OperationKind
from runtime.clock import clock
from runtime.ids import new_id
from tables import (
    deliveries,
    due_products,
    events,
    leases,
    ledger,
    operation_batches,
    operation_params,
    operations,
    test_clocks,
    tier_states,
)
from tables.engine import transaction
from tables.operation_params import TestClockParams
from worker.actors.lifecycle import advance_state, attempt_autorenew, send_reminder
from worker.actors.tiers import recalculate
from worker.execution import Bounds
from worker.webhooks.delivery import deliver_many

log = structlog.get_logger("tenure.test_clocks")

KIND = OperationKind.TEST_CLOCK
LEASE = timedelta(minutes=2)
MAX_REPEATS = 3
EVENT_BATCH = 500


async def advance(operation_id: str, client: httpx.AsyncClient, bounds: Bounds = Bounds()) -> bool:
    """Runs the advance of `operation_id`; False if it was finished or another run holds it."""
    async with transaction():
        started = await operations.mark_running(operation_id, clock.now())
    if started is None:
        return False
    op = await operations.get(operation_id)
    assert op is not None  # mark_running just found it
    org_id = op.organization_id
    target = operation_params.read(op, TestClockParams).advance_to
    job, holder = f"tc:{org_id}", new_id("run")
    if not await leases.take(job, holder, clock.now(), clock.now() + LEASE):
        log.info("test_clock_held", operation_id=operation_id, organization_id=org_id)
        return False
    try:
        steps = await walk(org_id, target, operation_id, client, bounds, job, holder)
        result = {"organization_id": org_id, "now": rfc3339(target), "steps": steps}
        async with transaction():
            if await operations.finish(operation_id, target, result=result):
                await events.record(
                    "operation.succeeded",
                    org_id,
                    target,
                    operation_id=operation_id,
                    data={"kind": KIND, "result": result},
                )
            await test_clocks.finish_advance(org_id, target, clock.now())
        await deliver_in_order(org_id, client)
        log.info("test_clock_advanced", operation_id=operation_id, organization_id=org_id, steps=steps)
        return True
    finally:
        await leases.release(job, holder, clock.now())


async def walk(
    org_id: str, target: datetime, operation_id: str, client: httpx.AsyncClient, bounds: Bounds, job: str, holder: str
) -> int:
    """Every due instant up to `target`, in order; answers how many."""
    steps, last, repeats = 0, None, 0
    while True:
        async with transaction():  # one connection for the step's reads (SQLite opens one per query else)
            row = await test_clocks.get(org_id)
            instant = await next_instant(org_id, row["now_at"])
        if instant is None or instant > target:
            return steps
        # The same instant again: something bought at the clock's time meanwhile; more than
        # that is a product whose instants do not move, a bug to report rather than a loop.
        repeats = repeats + 1 if instant == last else 0
        if repeats > MAX_REPEATS:
            raise RuntimeError(f"test clock of {org_id} is stuck at {rfc3339(instant)}")
        await run_instant(org_id, instant, bounds)
        async with transaction():
            await test_clocks.move(org_id, instant, clock.now())
            await operation_batches.touch(operation_id, clock.now())
        await deliver_in_order(org_id, client)
        if not await leases.extend(job, holder, clock.now() + LEASE):
            raise RuntimeError(f"test clock of {org_id}: another run took the lease")
        steps, last = steps + 1, instant


async def next_instant(org_id: str, now_at: datetime) -> datetime | None:
    """When the organization next needs anything: a product's sweep or the daily tier job.
    Something due at or before the clock (bought at its time, say) is due at the clock."""
    due = [d for d in (await due_products.next_due_of(org_id), await _next_tier_run(org_id, now_at)) if d]
    return max(min(due), now_at) if due else None


async def _next_tier_run(org_id: str, now_at: datetime) -> datetime | None:
    """The daily tier run at which the oldest charge counted by the last tier computation ages
    out: between charges the daily runs change nothing else, so the walk skips them."""
    state = await tier_states.tier_state(org_id)
    if state is None:
        return None
    computed_at = state["computed_at"] or now_at
    oldest = await ledger.oldest_revenue_since(org_id, add_years(computed_at, -1))
    return None if oldest is None else schedule.tier_ageing_run(oldest, now_at)


async def run_instant(org_id: str, instant: datetime, bounds: Bounds) -> None:
    """What the production sweeps would do at `instant`, for this organization only (each
    sweep's due products are read first, as the scheduler leases them before the actors run)."""
    async with transaction():
        due = {
            column: await due_products.due_of(org_id, column, instant)
            for column in ("next_state_at", "next_reminder_at", "next_autorenew_at")
        }
    for product_id in due["next_state_at"]:
        await advance_state(product_id, now=instant)
    for product_id in due["next_reminder_at"]:
        await send_reminder(product_id, now=instant)
    charged = False
    for product_id in due["next_autorenew_at"]:
        ran = await attempt_autorenew(product_id, bounds, now=instant)
        charged = charged or (ran is not None and ran.outcome == operations.OperationStatus.SUCCEEDED)
    if charged or instant.time() == schedule.TIER_RUN_TIME:  # after charges, as their follow-up does
        await recalculate(org_id, now=instant)


async def deliver_in_order(org_id: str, client: httpx.AsyncClient) -> int:
    """Fans out the organization's undispatched events and sends them one at a time, oldest first."""
    sent = 0
    while True:
        now = clock.now()
        async with transaction():
            claimed = await deliveries.claim_events(now, EVENT_BATCH, organization_id=org_id)
            if not claimed:
                return sent
            endpoints = await deliveries.enabled_endpoints([org_id])
            claimed.sort(key=lambda event: event["id"])
            pairs = [
                (hook["id"], event["id"])
                for event in claimed
                for hook in endpoints
                if hooks.matches(frozenset(hook["event_types"]), event["type"])
            ]
            created = await deliveries.add_deliveries(pairs, now)
        await deliver_many(created, client, concurrency=1)
        sent += len(created)
