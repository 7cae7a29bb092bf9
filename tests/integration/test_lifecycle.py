"""Time travel: daily sweeps over a mixed portfolio do exactly what the lifecycle rules call for."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from runtime.clock import clock
from tables import engine
from tables.events import Event
from tables.operations import Operation
from tables.products import Product
from tests.api import builders
from tests.integration.flows import buy, charges_for, db, renew, wait_done
from worker import sweeps

T0 = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)


def tick_days(broker, sender, days: int) -> None:
    """A scheduler tick each day (one loop and one pool, as in `tenure scheduler`), workers draining."""

    async def run() -> None:
        await engine.start_pool(4)
        try:
            for _ in range(days):
                clock.advance(timedelta(days=1))
                await sweeps.run_all(sender)
                for queue in ("lifecycle", "operations"):
                    await asyncio.to_thread(broker.join, queue, interval=5, timeout=60_000)
        finally:
            await engine.close_pool()

    db(run())


def bought(api, who, org, name, **kwargs) -> str:
    op = wait_done(api, who, buy(api, who, org, name, **kwargs).json()["id"])
    assert op["status"] == "succeeded", op
    return op["result"]["product_id"]


def set_autorenew(api, who, product_id, on: bool) -> None:
    answer = api.patch(f"/v1/products/{product_id}", json={"autorenew": on}, headers=who.auth)
    assert answer.status_code == 200, answer.text


def event_counts(org: str) -> Counter:
    return Counter(e["type"] for e in db(Event.select(Event.type).where(Event.organization_id == org).run()))


def test_a_year_of_daily_sweeps_over_a_mixed_portfolio(api, workers, broker, sender):
    workers()
    clock.pin(T0)
    alice = builders.person(api, "Alice")
    funded = builders.organization(api, alice)
    builders.fund(api, alice, funded, 100_000)
    bob = builders.person(api, "Bob")
    unfunded = builders.organization(api, bob)
    remy = builders.person(api, "Remy")
    reseller = builders.organization(api, remy, reseller=True)
    builders.fund(api, remy, reseller, 100_000)
    client_id = builders.client_of(api, remy, reseller)

    renewing = bought(api, alice, funded, "renews.fr")
    lapsing = bought(api, alice, funded, "lapses@funded.test", kind="mailbox")
    set_autorenew(api, alice, lapsing, False)
    builders.credit_limit(api, unfunded, 1500)
    broke = bought(api, bob, unfunded, "broke.fr", payment_method="invoice")
    client_renewing = bought(api, remy, reseller, "client-renews.fr", client_id=client_id)
    client_lapsing = bought(api, remy, reseller, "client-lapses.fr", client_id=client_id)
    set_autorenew(api, remy, client_lapsing, False)

    tick_days(broker, sender, 440)

    states = {r["id"]: r["state"] for r in db(Product.select(Product.id, Product.state).run())}
    assert states == {
        renewing: "active",
        lapsing: "deleted",
        broke: "deleted",
        client_renewing: "active",
        client_lapsing: "deleted",
    }
    renewals = db(
        Operation.select(Operation.product_id, Operation.status, Operation.error_code)
        .where(Operation.kind == "renewal")
        .run()
    )
    assert sorted((r["product_id"], r["status"]) for r in renewals if r["status"] == "succeeded") == sorted(
        [(renewing, "succeeded"), (client_renewing, "succeeded")]
    )
    assert [r["error_code"] for r in renewals if r["status"] == "failed"] == ["insufficient_funds"] * 3
    assert charges_for(funded) == [1500, 2400, 1500]
    assert charges_for(unfunded) == [1500]
    assert charges_for(reseller) == [1500, 1500, 1500]
    for org in (funded, unfunded, reseller):
        counts = event_counts(org)
        assert counts["product.expiring"] == 3, (org, counts)
        assert counts["product.expired"] == 1, (org, counts)
        assert counts["product.state_changed"] == 3, (org, counts)
    assert event_counts(unfunded)["operation.failed"] == 3
    assert {e["organization_id"] for e in db(Event.select(Event.organization_id).run())} == {funded, unfunded, reseller}


def test_a_renewal_in_grace_brings_the_product_back_to_active(api, workers, broker, sender):
    workers()
    clock.pin(T0)
    owner, org = builders.funded(api, 100_000)
    product_id = bought(api, owner, org, "grace.fr")
    set_autorenew(api, owner, product_id, False)
    clock.advance(timedelta(days=360))  # a sweep that missed days catches up on the next tick
    tick_days(broker, sender, 10)
    product = api.get(f"/v1/products/{product_id}", headers=owner.auth).json()
    assert product["state"] == "grace"

    op = wait_done(api, owner, renew(api, owner, product).json()["id"])
    tick_days(broker, sender, 35)

    assert op["status"] == "succeeded"
    after = api.get(f"/v1/products/{product_id}", headers=owner.auth).json()
    assert after["state"] == "active"
    assert after["expires_at"] > product["expires_at"]
    assert event_counts(org)["product.state_changed"] == 0


def test_a_scheduler_that_dies_after_leasing_leaves_nothing_the_next_tick_does_not_finish(api, workers, broker, sender):
    from tables import due_products

    workers()
    clock.pin(T0)
    owner, org = builders.funded(api, 100_000)
    product_id = bought(api, owner, org, "orphan.fr")
    set_autorenew(api, owner, product_id, False)  # else the renewal reschedules its reminders
    clock.pin(T0 + timedelta(days=365 - 25))  # the 30-day reminder is due
    now = clock.now()
    leased = db(due_products.lease_due("next_reminder_at", now, now + sweeps.LEASE, 100))  # ...then it died
    assert leased == [product_id]

    db(sweeps.run_all(sender))  # a tick within the lease: nothing is sent twice
    broker.join("lifecycle", interval=5, timeout=30_000)
    assert event_counts(org)["product.expiring"] == 0

    clock.advance(sweeps.LEASE + timedelta(seconds=1))  # the lease ran out
    db(sweeps.run_all(sender))
    broker.join("lifecycle", interval=5, timeout=30_000)
    assert event_counts(org)["product.expiring"] == 1


def test_an_idempotency_key_cannot_take_an_autorenew_attempts_place(api, workers, broker, sender):
    """A member who sends the key tenure gives an autorenew attempt does not block that attempt."""
    workers()
    clock.pin(T0)
    owner, org = builders.funded(api, 100_000)
    product_id = bought(api, owner, org, "squat.fr")
    expires = api.get(f"/v1/products/{product_id}", headers=owner.auth).json()["expires_at"]
    stored = datetime.fromisoformat(expires.replace("Z", "+00:00")).isoformat()
    for days in (31, 15, 1):  # every window's key, taken by purchases first
        squat = buy(api, owner, org, f"squat{days}.fr", key=f"autorenew:{product_id}:{stored}:{days}")
        assert squat.status_code == 202, squat.text

    clock.pin(datetime.fromisoformat(stored) - timedelta(days=31, hours=1))
    tick_days(broker, sender, 1)

    after = api.get(f"/v1/products/{product_id}", headers=owner.auth).json()
    assert after["expires_at"] > expires, "the autorenew attempt was blocked by a caller's key"
