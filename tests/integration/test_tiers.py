"""Volume tiers follow the payer's charges; the new tier prices later purchases."""

from __future__ import annotations

import asyncio
import time

from rules.ledger import Book
from runtime.clock import clock
from runtime.ids import new_id
from tables import events, organizations, tier_states
from tables.engine import transaction
from tables.ledger import LedgerEntry
from tests.api import builders
from tests.integration.flows import buy, charges_for, db, wait_done
from worker.actors import tiers


def wait_tier(api, who, org, tier: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        billing = api.get(f"/v1/organizations/{org}/billing", headers=who.auth).json()
        if billing["tier"] == tier or time.monotonic() > deadline:
            return billing
        time.sleep(0.1)


def test_crossing_a_threshold_moves_the_tier_once_and_discounts_later_purchases(api, workers):
    workers()
    owner, org = builders.funded(api, 1_000_000)

    ops = [buy(api, owner, org, f"site{i}", kind="hosting", years=10).json()["id"] for i in range(5)]
    assert [wait_done(api, owner, op)["status"] for op in ops] == ["succeeded"] * 5

    billing = wait_tier(api, owner, org, "B")
    assert (billing["tier"], billing["discount_percent"]) == ("B", 10)
    assert billing["volume_12m"] == {"amount": 300_000, "currency": "EUR"}
    assert billing["next_tier_at"] == {"amount": 1_000_000, "currency": "EUR"}
    changes = db(events.of(org, "tier.changed"))
    assert [(e["data"]["from"], e["data"]["to"]) for e in changes] == [("A", "B")]

    later = wait_done(api, owner, buy(api, owner, org, "cheaper.fr").json()["id"])
    assert later["result"]["price"] == {"amount": 1350, "currency": "EUR"}
    assert charges_for(org)[-1] == 1350


def test_every_effect_writes_its_event(api, workers):
    workers()
    owner = builders.person(api)
    reseller = builders.organization(api, owner, reseller=True)
    builders.fund(api, owner, reseller, 10_000)
    client_id = builders.client_of(api, owner, reseller)
    bought = wait_done(api, owner, buy(api, owner, reseller, "evt.fr", client_id=client_id).json()["id"])
    failed = wait_done(api, owner, buy(api, owner, reseller, "evt.com", years=10, kind="hosting").json()["id"])
    product = api.get(f"/v1/products/{bought['result']['product_id']}", headers=owner.auth).json()
    wait_done(
        api,
        owner,
        api.post(
            f"/v1/products/{product['id']}/renewals",
            headers=owner.auth,
            json={"years": 1, "current_expires_at": product["expires_at"], "payment_method": "prepaid"},
        ).json()["id"],
    )
    wait_done(
        api,
        owner,
        api.post(f"/v1/products/{product['id']}/transfers", headers=owner.auth, json={"to_client": None}).json()["id"],
    )
    wait_done(
        api,
        owner,
        api.post(
            f"/v1/resellers/{reseller}/clients/{client_id}/release",
            headers=owner.auth,
            json={"owner_email": "new@owner.test"},
        ).json()["id"],
    )

    types = sorted(e["type"] for e in db(events.of(reseller)))

    assert failed["status"] == "failed"
    assert types == sorted(
        [
            "product.purchased",
            "product.renewed",
            "product.transferred",
            "client.released",
            "operation.succeeded",
            "operation.succeeded",
            "operation.succeeded",
            "operation.succeeded",
            "operation.failed",
        ]
    )


def test_the_daily_recalculation_lowers_the_tier_when_purchases_age_out(api, workers, broker, sender):
    from datetime import timedelta

    from runtime.clock import clock
    from worker import sweeps

    workers()
    clock.pin(clock.now())
    owner, org = builders.funded(api, 1_000_000)
    ops = [buy(api, owner, org, f"old{i}", kind="hosting", years=10).json()["id"] for i in range(5)]
    assert [wait_done(api, owner, op)["status"] for op in ops] == ["succeeded"] * 5
    assert wait_tier(api, owner, org, "B")["tier"] == "B"

    clock.advance(timedelta(days=366))
    db(sweeps.recalculate_tiers(sender))
    broker.join("tiers", interval=10, timeout=20_000)

    billing = wait_tier(api, owner, org, "A")
    assert (billing["tier"], billing["volume_12m"]["amount"]) == ("A", 0)
    changes = db(events.of(org, "tier.changed"))
    assert [(e["data"]["from"], e["data"]["to"]) for e in changes] == [("A", "B"), ("B", "A")]


def test_a_charge_committing_while_the_tier_is_recomputed_is_counted_then_or_after(database_url):
    """A payer already flagged (an earlier charge's message on its way): a charge whose
    transaction is still open when the recalculation starts is counted by it, or leaves the
    flag set for the next one; it never commits unseen behind a cleared flag."""
    now = clock.now()

    async def scenario() -> dict:
        async with transaction():
            org = await organizations.open_with_owners("Payer", False, "EUR", now)
        assert await tier_states.flag_tier_recalc(org.id, now)  # the earlier charge: a message is on its way
        flagged, release = asyncio.Event(), asyncio.Event()

        async def charge() -> None:
            async with transaction():
                assert not await tier_states.flag_tier_recalc(org.id, now)  # already flagged: no second message
                await LedgerEntry.insert(
                    LedgerEntry(
                        id=new_id("led"),
                        txn_id="txn_race",
                        book=Book.REVENUE,
                        organization_id=org.id,
                        amount=300_000,  # tier B from 250,000
                        currency="EUR",
                        created_at=now,
                    )
                )
                flagged.set()
                await release.wait()

        charging = asyncio.create_task(charge())
        await flagged.wait()
        recalculating = asyncio.create_task(tiers.recalculate(org.id, now))
        await asyncio.sleep(0.3)  # the recalculation runs as far as it can while the charge is open
        release.set()
        await asyncio.gather(charging, recalculating)
        state = await tier_states.lock_tier(org.id)
        assert state is not None
        return state

    state = db(scenario())
    assert state["tier"] == "B" or state["recalc_requested_at"] is not None, state
