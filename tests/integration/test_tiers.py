"""Volume tiers follow the payer's charges; the new tier prices later purchases."""

from __future__ import annotations

import time

from tables import events
from tests.api import builders
from tests.integration.flows import buy, charges_for, db, wait_done


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
