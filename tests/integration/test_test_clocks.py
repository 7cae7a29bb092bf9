"""Sandbox organizations on their test clocks, with real workers, broker and webhook receiver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from runtime.clock import clock
from tables import engine
from tables.events import Event
from tables.products import Product
from tests.api import builders
from tests.integration import rehearsal
from tests.integration.flows import buy, db, wait_done
from worker import sweeps

T0 = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)


def test_a_reseller_sandbox_lives_thirteen_months_in_one_advance(api, workers, broker, receiver):
    workers()
    clock.pin(T0)
    scene = rehearsal.build(api, broker, receiver, products=60, clients=10)

    rehearsal.rehearse(api, broker, scene, months=13)

    rehearsal.check(api, receiver, scene)
    assert clock.now() == T0  # production time did not move
    shown = api.get(f"/v1/organizations/{scene.sandbox}/test-clock", headers=scene.owner.auth).json()
    assert (shown["now"], shown["advancing"]) == (rehearsal.rfc3339(scene.advanced_to), False)


def sweep_now(sender) -> dict:
    async def run() -> dict:
        await engine.start_pool(4)
        try:
            return await sweeps.run_all(sender)
        finally:
            await engine.close_pool()

    return db(run())


def test_the_production_sweeps_leave_sandboxes_to_their_clocks(api, workers, broker, sender):
    workers()
    clock.pin(T0)
    owner = builders.person(api)
    play = api.post("/v1/organizations", json={"name": "Play", "sandbox": True}, headers=owner.auth).json()["id"]
    live = builders.organization(api, owner, name="Live")
    for org in (play, live):
        builders.fund(api, owner, org, 1_000_000)
    played = wait_done(api, owner, buy(api, owner, play, "same-name.fr").json()["id"])
    lived = wait_done(api, owner, buy(api, owner, live, "same-name.fr").json()["id"])
    assert (played["status"], lived["status"]) == ("succeeded", "succeeded"), (played, lived)

    clock.pin(T0 + timedelta(days=400))  # the wall clock far past both expiries
    sweep_now(sender)
    for queue in ("lifecycle", "operations"):
        broker.join(queue, interval=10, timeout=60_000)

    states = {r["organization"]: r for r in db(Product.select().run())}
    assert states[live]["state"] == "redemption"  # 400 days: past expiry and the 30 days of grace
    assert (states[play]["state"], states[play]["expires_at"]) == ("active", T0.replace(year=2028))
    assert (
        db(
            Event.count()
            .where(
                (Event.organization_id == play)
                & (Event.type != "product.purchased")
                & (Event.type != "operation.succeeded")
            )
            .run()
        )
        == 0
    )


def test_a_sandbox_name_never_blocks_production_nor_the_reverse(api, workers):
    workers()
    owner = builders.person(api)
    play = api.post("/v1/organizations", json={"name": "Play", "sandbox": True}, headers=owner.auth).json()["id"]
    other_play = api.post("/v1/organizations", json={"name": "Play2", "sandbox": True}, headers=owner.auth).json()["id"]
    live = builders.organization(api, owner, name="Live")
    for org in (play, other_play, live):
        builders.fund(api, owner, org, 1_000_000)

    first = wait_done(api, owner, buy(api, owner, play, "held.fr").json()["id"])
    production = wait_done(api, owner, buy(api, owner, live, "held.fr").json()["id"])
    second_sandbox = buy(api, owner, other_play, "held.fr")

    assert first["status"] == "succeeded" and production["status"] == "succeeded"
    assert (second_sandbox.status_code, second_sandbox.json()["error"]["code"]) == (409, "name_taken")


def test_a_sandbox_purchase_happens_at_its_clock(api, workers):
    workers()
    clock.pin(T0)
    owner = builders.person(api)
    play = api.post("/v1/organizations", json={"name": "Play", "sandbox": True}, headers=owner.auth).json()["id"]
    builders.fund(api, owner, play, 1_000_000)
    later = T0 + timedelta(days=45)
    assert rehearsal.advance(api, owner, play, later)["status"] == "succeeded"

    op = wait_done(api, owner, buy(api, owner, play, "later.fr").json()["id"])

    product = api.get(f"/v1/products/{op['result']['product_id']}", headers=owner.auth).json()
    assert product["expires_at"] == "2028-02-24T12:00:00Z"
    assert clock.now() == T0


def test_a_sandbox_tier_ages_out_at_the_daily_run_a_year_after_its_charges(api, workers, broker):
    workers()
    clock.pin(T0)
    owner = builders.person(api)
    play = api.post("/v1/organizations", json={"name": "Play", "sandbox": True}, headers=owner.auth).json()["id"]
    builders.fund(api, owner, play, 10_000_000)
    ops = [buy(api, owner, play, f"host{i}.example", kind="hosting", years=10).json()["id"] for i in range(5)]
    assert {wait_done(api, owner, op)["status"] for op in ops} == {"succeeded"}
    broker.join("tiers", interval=10, timeout=30_000)
    assert api.get(f"/v1/organizations/{play}/billing", headers=owner.auth).json()["tier"] == "B"

    assert rehearsal.advance(api, owner, play, rehearsal.add_months(T0, 13))["status"] == "succeeded"

    billing = api.get(f"/v1/organizations/{play}/billing", headers=owner.auth).json()
    assert (billing["tier"], billing["volume_12m"]["amount"]) == ("A", 0)
    changes = db(
        Event.select(Event.data, Event.created_at)
        .where((Event.organization_id == play) & (Event.type == "tier.changed"))
        .order_by(Event.created_at)
        .output(load_json=True)
        .run()
    )
    assert [(c["data"]["from"], c["data"]["to"]) for c in changes] == [("A", "B"), ("B", "A")]
    assert [c["created_at"] for c in changes] == [T0, datetime(2028, 1, 11, 3, 17, tzinfo=UTC)]


def test_an_unfunded_sandbox_fails_its_three_autorenew_attempts_at_their_simulated_times(api, workers):
    workers()
    clock.pin(T0)
    owner = builders.person(api)
    play = api.post("/v1/organizations", json={"name": "Broke", "sandbox": True}, headers=owner.auth).json()["id"]
    op = wait_done(api, owner, buy(api, owner, play, "broke.fr", payment_method="invoice").json()["id"])
    assert op["status"] == "succeeded", op
    expires = T0.replace(year=2028)

    assert rehearsal.advance(api, owner, play, expires + timedelta(days=40))["status"] == "succeeded"

    failed = db(
        Event.select(Event.data, Event.created_at)
        .where((Event.organization_id == play) & (Event.type == "operation.failed"))
        .order_by(Event.created_at)
        .output(load_json=True)
        .run()
    )
    assert [(e["created_at"], e["data"]["error"]["code"]) for e in failed] == [
        (expires - timedelta(days=days), "insufficient_funds") for days in (31, 15, 1)
    ]
    product = api.get(f"/v1/products/{op['result']['product_id']}", headers=owner.auth).json()
    assert product["state"] == "redemption"
