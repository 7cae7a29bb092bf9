"""Outbound webhooks: signed deliveries to a real receiver, retries, disabling, the delivery log."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

from runtime.clock import clock
from tests.api import builders
from tests.integration.flows import buy, db, wait_done
from worker.webhooks.fanout import fan_out, send_due


def subscribe(api, who, org, receiver, path: str, event_types: list[str] | None = None) -> str:
    answer = api.post(
        f"/v1/organizations/{org}/webhook-endpoints",
        headers=who.auth,
        json={"url": receiver.base + path, "event_types": event_types or []},
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["secret"].startswith("whsec_")
    receiver.secrets[path] = answer.json()["secret"]
    return answer.json()["id"]


def settle(broker, sender, rounds: int = 1, step: timedelta | None = None) -> None:
    """Lets workers finish, then runs the scheduler's webhook tick (moving tenure's clock by `step`)."""
    for _ in range(rounds):
        broker.join("operations", interval=10, timeout=30_000)
        broker.join("webhooks", interval=10, timeout=30_000)
        if step:
            clock.advance(step)
        db(fan_out(sender))
        db(send_due(sender))
        broker.join("webhooks", interval=10, timeout=30_000)


def test_events_arrive_signed_once_per_endpoint_and_respect_filters(api, workers, broker, sender, receiver):
    workers()
    owner, org = builders.funded(api, 100_000)
    subscribe(api, owner, org, receiver, "/all")
    subscribe(api, owner, org, receiver, "/renewals", ["product.renewed"])

    op = wait_done(api, owner, buy(api, owner, org, "hook.fr").json()["id"])
    settle(broker, sender)

    assert receiver.rejected == []
    assert sorted(r.type for r in receiver.delivered("/all")) == ["operation.succeeded", "product.purchased"]
    purchased = next(r for r in receiver.delivered("/all") if r.type == "product.purchased")
    assert purchased.data["product_id"] == op["result"]["product_id"]
    assert purchased.data["name"] == "hook.fr"
    assert receiver.delivered("/renewals") == []


def test_a_flaky_receiver_gets_every_event_exactly_once_when_it_recovers(api, workers, broker, sender, receiver):
    workers()
    owner, org = builders.funded(api, 100_000)
    path = "/flaky"
    subscribe(api, owner, org, receiver, path)
    receiver.behaviour = lambda p, wid, attempt: (503, {}) if attempt % 2 == 1 else (200, {})
    clock.pin(clock.now())

    ops = [buy(api, owner, org, f"flaky{i}.fr").json()["id"] for i in range(5)]
    for op in ops:
        wait_done(api, owner, op)
    settle(broker, sender, rounds=3, step=timedelta(seconds=6))

    accepted = Counter(r.webhook_id for r in receiver.delivered(path))
    assert len(accepted) == 10  # product.purchased + operation.succeeded for each purchase
    assert set(accepted.values()) == {1}
    assert receiver.rejected == []
    assert len(receiver.received) == 20  # each one failed once first


def test_410_disables_the_endpoint_at_once_and_tells_the_other_endpoints(api, workers, broker, sender, receiver):
    workers()
    owner, org = builders.funded(api, 100_000)
    gone = subscribe(api, owner, org, receiver, "/gone", ["product.purchased"])
    subscribe(api, owner, org, receiver, "/ops", ["endpoint.disabled"])
    receiver.behaviour = lambda p, wid, attempt: (410, {}) if p == "/gone" else (200, {})

    wait_done(api, owner, buy(api, owner, org, "gone.fr").json()["id"])
    settle(broker, sender, rounds=2)

    endpoints = {e["id"]: e for e in api.get(f"/v1/organizations/{org}/webhook-endpoints", headers=owner.auth).json()}
    assert (endpoints[gone]["enabled"], endpoints[gone]["disabled_reason"]) == (False, "gone")
    assert len([r for r in receiver.received if r.path == "/gone"]) == 1  # never tried again
    notices = receiver.delivered("/ops")
    assert [(r.type, r.data["endpoint_id"]) for r in notices] == [("endpoint.disabled", gone)]


def test_an_outage_follows_the_schedule_then_fails_and_five_days_disable_the_endpoint(
    api, workers, broker, sender, receiver
):
    workers()
    owner, org = builders.funded(api, 100_000)
    hook = subscribe(api, owner, org, receiver, "/down", ["product.purchased"])
    receiver.behaviour = lambda p, wid, attempt: (500, {})
    clock.pin(clock.now())

    wait_done(api, owner, buy(api, owner, org, "down0.fr").json()["id"])
    settle(broker, sender, rounds=9, step=timedelta(hours=11))

    log = api.get(f"/v1/organizations/{org}/webhook-endpoints/{hook}/deliveries", headers=owner.auth).json()
    assert [(d["status"], d["attempts"]) for d in log["items"]] == [("failed", 8)]
    assert [a["status_code"] for a in log["items"][0]["attempt_log"]] == [500] * 8
    assert all(a["response_excerpt"].startswith('{"seen"') for a in log["items"][0]["attempt_log"])

    for day in range(1, 4):  # more failing events, days apart: five days of failure in all
        clock.advance(timedelta(days=1))
        wait_done(api, owner, buy(api, owner, org, f"down{day}.fr").json()["id"])
        settle(broker, sender, rounds=3, step=timedelta(hours=11))

    endpoint = api.get(f"/v1/organizations/{org}/webhook-endpoints", headers=owner.auth).json()[0]
    assert (endpoint["enabled"], endpoint["disabled_reason"]) == (False, "failing_for_5_days")


def test_retry_after_is_honoured(api, workers, broker, sender, receiver):
    workers()
    owner, org = builders.funded(api, 100_000)
    hook = subscribe(api, owner, org, receiver, "/busy", ["product.purchased"])
    receiver.behaviour = lambda p, wid, attempt: (429, {"Retry-After": "600"})
    clock.pin(clock.now())
    start = clock.now()

    wait_done(api, owner, buy(api, owner, org, "busy.fr").json()["id"])
    settle(broker, sender)

    delivery = api.get(f"/v1/organizations/{org}/webhook-endpoints/{hook}/deliveries", headers=owner.auth).json()[
        "items"
    ][0]
    from datetime import datetime

    wait = datetime.fromisoformat(delivery["next_attempt_at"]) - start
    assert timedelta(minutes=9) < wait <= timedelta(minutes=11)  # not the schedule's 5 s


def test_a_failed_delivery_can_be_retried_by_hand(api, workers, broker, sender, receiver):
    workers()
    owner, org = builders.funded(api, 100_000)
    hook = subscribe(api, owner, org, receiver, "/manual", ["product.purchased"])
    receiver.behaviour = lambda p, wid, attempt: (500, {}) if attempt <= 8 else (200, {})
    clock.pin(clock.now())
    wait_done(api, owner, buy(api, owner, org, "manual.fr").json()["id"])
    settle(broker, sender, rounds=9, step=timedelta(hours=11))
    delivery = api.get(f"/v1/organizations/{org}/webhook-endpoints/{hook}/deliveries", headers=owner.auth).json()[
        "items"
    ][0]
    assert delivery["status"] == "failed"

    answer = api.post(
        f"/v1/organizations/{org}/webhook-endpoints/{hook}/deliveries/{delivery['id']}/retry", headers=owner.auth
    )
    assert answer.status_code == 202
    deadline = time.monotonic() + 10
    while not receiver.delivered("/manual") and time.monotonic() < deadline:
        time.sleep(0.05)

    assert len(receiver.delivered("/manual")) == 1
    broker.join("webhooks", timeout=10_000)
    after = api.get(f"/v1/organizations/{org}/webhook-endpoints/{hook}/deliveries", headers=owner.auth).json()["items"][
        0
    ]
    assert (after["status"], after["attempts"]) == ("succeeded", 9)


def test_a_resellers_endpoint_gets_its_clients_events(api, workers, broker, sender, receiver):
    workers()
    owner, reseller = builders.funded(api, 100_000, reseller=True)
    client_id = builders.client_of(api, owner, reseller)
    subscribe(api, owner, reseller, receiver, "/reseller", ["product.purchased"])

    wait_done(api, owner, buy(api, owner, reseller, "client-hook.fr", client_id=client_id).json()["id"])
    settle(broker, sender)

    assert [r.data["client_id"] for r in receiver.delivered("/reseller")] == [client_id]


def test_redirects_are_not_followed(api, workers, broker, sender, receiver):
    workers()
    owner, org = builders.funded(api, 100_000)
    hook = subscribe(api, owner, org, receiver, "/moved", ["product.purchased"])
    receiver.secrets["/elsewhere"] = receiver.secrets["/moved"]
    receiver.behaviour = lambda p, wid, n: (
        (302, {"Location": receiver.base + "/elsewhere"}) if p == "/moved" else (200, {})
    )

    wait_done(api, owner, buy(api, owner, org, "moved.fr").json()["id"])
    settle(broker, sender)

    assert [r.path for r in receiver.received] == ["/moved"]
    delivery = api.get(f"/v1/organizations/{org}/webhook-endpoints/{hook}/deliveries", headers=owner.auth).json()[
        "items"
    ][0]
    assert delivery["status"] == "pending"
    assert [a["status_code"] for a in delivery["attempt_log"]] == [302]
