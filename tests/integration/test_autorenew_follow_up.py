"""An autorenew attempt is followed up as any operation: its webhooks and its payer's tier at once,
not when the scheduler's webhook tick or the relay's stall comes round."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from runtime.clock import clock
from tables import tier_states
from tests.api import builders
from tests.integration.flows import db
from tests.integration.test_lifecycle import T0, bought, tick_days
from tests.integration.test_webhooks_out import subscribe


def test_an_autorenew_attempt_sends_its_webhooks_and_its_tier_message_at_once(api, workers, broker, sender, receiver):
    workers()
    clock.pin(T0)
    owner, org = builders.funded(api, 100_000)
    product_id = bought(api, owner, org, "renews-itself.fr")
    broker.join("tiers", interval=10, timeout=30_000)  # the purchase's recalculation is done
    subscribe(api, owner, org, receiver, "/renewals", ["product.renewed"])
    expires = api.get(f"/v1/products/{product_id}", headers=owner.auth).json()["expires_at"]
    expires_at = datetime.fromisoformat(expires.replace("Z", "+00:00"))

    clock.pin(expires_at - timedelta(days=31, hours=1))
    tick_days(broker, sender, 1)  # the sweeps only: no webhook tick, no relay

    after = api.get(f"/v1/products/{product_id}", headers=owner.auth).json()
    assert after["expires_at"] > expires, "the autorenew attempt did not renew"
    deadline = time.monotonic() + 30
    while not (receiver.delivered("/renewals") and db(tier_states.tier_state(org))["recalc_requested_at"] is None):
        assert time.monotonic() < deadline, (
            f"delivered {[r.type for r in receiver.delivered('/renewals')]}, tier state {db(tier_states.tier_state(org))}"
        )
        time.sleep(0.05)
    assert [r.type for r in receiver.delivered("/renewals")] == ["product.renewed"]
    assert receiver.delivered("/renewals")[0].data["product_id"] == product_id
