"""Every event type tenure documents is emitted by the flow that causes it, and delivered."""

from __future__ import annotations

from datetime import datetime, timedelta

import jsonschema_rs

from rules.webhooks import EVENT_TYPES
from runtime.clock import clock
from tests.api import builders
from tests.integration.flows import buy, db, renew, wait_done
from tests.integration.receiver import Receiver
from tests.integration.test_tiers import wait_tier
from tests.integration.test_webhooks_out import settle
from worker import sweeps


def test_each_flow_emits_its_event_and_every_type_reaches_a_subscriber(api, workers, broker, sender):
    workers()
    receiver = Receiver()
    base = receiver.start()
    clock.pin(clock.now())
    try:
        owner = builders.person(api)
        reseller = builders.organization(api, owner, reseller=True)
        builders.fund(api, owner, reseller, 1_000_000)
        for path, types in (("/all", []), ("/gone", ["product.purchased"])):
            answer = api.post(
                f"/v1/organizations/{reseller}/webhook-endpoints",
                headers=owner.auth,
                json={"url": base + path, "event_types": types},
            )
            receiver.secrets[path] = answer.json()["secret"]
        receiver.behaviour = lambda p, wid, n: (410, {}) if p == "/gone" else (200, {})
        client_id = builders.client_of(api, owner, reseller)

        done = lambda answer: wait_done(api, owner, answer.json()["id"])  # noqa: E731
        kept = done(buy(api, owner, reseller, "kept.fr"))  # product.purchased
        product = api.get(f"/v1/products/{kept['result']['product_id']}", headers=owner.auth).json()
        done(renew(api, owner, product))  # product.renewed
        done(
            api.post(f"/v1/products/{product['id']}/transfers", json={"to_client": client_id}, headers=owner.auth)
        )  # product.transferred
        done(buy(api, owner, reseller, "big", kind="hosting", years=10))
        for n in range(4):  # tier.changed
            done(buy(api, owner, reseller, f"big{n}", kind="hosting", years=10))
        assert wait_tier(api, owner, reseller, "B")["tier"] == "B"  # recalculated shortly after
        product = api.get(f"/v1/products/{product['id']}", headers=owner.auth).json()
        assert done(renew(api, owner, product, years=10))["status"] == "failed"  # operation.failed (too far ahead)
        lapsing = done(buy(api, owner, reseller, "lapsing.fr"))["result"]["product_id"]
        api.patch(f"/v1/products/{lapsing}", json={"autorenew": False}, headers=owner.auth)
        released = done(
            api.post(
                f"/v1/resellers/{reseller}/clients/{client_id}/release",  # client.released
                json={"owner_email": "new@owner.test"},
                headers=owner.auth,
            )
        )
        claimed = api.post(
            "/v1/accounts/claim",  # organization.claimed
            json={"claim_token": released["result"]["claim_token"]},
        )
        assert claimed.status_code == 201, claimed.text
        expires = datetime.fromisoformat(api.get(f"/v1/products/{lapsing}", headers=owner.auth).json()["expires_at"])
        for moment in (expires - timedelta(days=29), expires + timedelta(days=31)):  # expiring, expired, state
            clock.pin(moment)
            db(sweeps.run_all(sender))
            broker.join("lifecycle", interval=10, timeout=30_000)
        lowered = api.patch(
            f"/v1/organizations/{reseller}/billing",
            headers=owner.auth,  # billing.low_balance
            json={"low_balance_threshold": {"amount": 2_000_000, "currency": "EUR"}},
        )
        assert lowered.status_code == 200, lowered.text
        settle(broker, sender, rounds=3)  # endpoint.disabled

        delivered = receiver.delivered("/all")
        catalog = api.get("/schema/openapi.json").json()
    finally:
        receiver.stop()

    assert {r.type for r in delivered} == EVENT_TYPES
    assert receiver.rejected == []
    # Every body sent matches its entry in the schema's event catalog (OpenAPI `webhooks`).
    mismatches = [f"{r.type}: {problem}" for r in delivered for problem in payload_problems(catalog, r.body)]
    assert mismatches == []
    assert len(delivered) > len(EVENT_TYPES)


def payload_problems(document: dict, body: dict) -> list[str]:
    """Why `body` does not match the catalog's schema for its type (none: it matches)."""
    entry = document["webhooks"].get(body["type"])
    if entry is None:
        return ["not in the catalog"]
    schema = entry["post"]["requestBody"]["content"]["application/json"]["schema"]
    validator = jsonschema_rs.validator_for({**schema, "components": document["components"]})
    return [error.message for error in validator.iter_errors(body)]


def test_the_catalog_refuses_a_payload_that_drifted(api):
    document = api.get("/schema/openapi.json").json()
    example = document["webhooks"]["product.renewed"]["post"]["requestBody"]["content"]["application/json"]["example"]
    drifted = {**example, "data": {k: v for k, v in example["data"].items() if k != "expires_at"}}

    assert payload_problems(document, example) == []
    assert payload_problems(document, drifted) != []
    assert set(document["webhooks"]) == EVENT_TYPES | {"ping"}
