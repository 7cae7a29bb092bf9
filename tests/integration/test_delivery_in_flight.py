"""One delivery, one attempt at a time: an attempt in flight holds its delivery until it settles."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from runtime.clock import clock
from tables import deliveries, events, webhooks
from tables.engine import transaction
from tests.api import builders
from tests.integration.flows import db
from tests.integration.receiver import Receiver
from worker.webhooks.client import pinned_client
from worker.webhooks.delivery import deliver
from worker.webhooks.fanout import fan_out

WAIT_S = 10  # for the first POST to arrive; then the receiver holds it (well under the 15 s timeout)


@pytest.fixture
def slow_receiver():
    """A receiver whose first answer waits until the test lets it go; `arrived` is set as
    soon as that first POST is in."""
    receiver, arrived, answer_first = Receiver(), threading.Event(), threading.Event()

    def behaviour(path: str, webhook_id: str, attempt: int) -> tuple[int, dict]:
        if attempt == 1:
            arrived.set()
            answer_first.wait(WAIT_S)
        return 200, {}

    receiver.behaviour = behaviour
    receiver.base = receiver.start()
    yield receiver, arrived, answer_first
    answer_first.set()
    receiver.stop()


def one_delivery(api, sender, receiver, at) -> str:
    owner = builders.person(api)
    org = builders.organization(api, owner)
    answer = api.post(
        f"/v1/organizations/{org}/webhook-endpoints",
        headers=owner.auth,
        json={"url": receiver.base + "/in", "event_types": []},
    )
    assert answer.status_code == 201, answer.text
    receiver.secrets["/in"] = answer.json()["secret"]

    async def make() -> int:
        async with transaction():
            await events.record("tier.changed", org, at, data={"from": "A", "to": "B"})
        return await fan_out(sender)  # the deliver message waits in Redis: no worker runs here

    assert db(make()) == 1
    return db(webhooks.Delivery.select(webhooks.Delivery.id).first().run())["id"]


async def deliver_once(delivery_id: str) -> tuple[str, str | None]:
    async with pinned_client(allow_private=True) as client:  # each thread runs its own event loop
        return await deliver(delivery_id, client)


@pytest.mark.parametrize("lease_ran_out", [False, True], ids=["duplicate-message", "lease-ran-out"])
def test_an_attempt_in_flight_is_never_joined_by_a_second_one(api, sender, slow_receiver, lease_ran_out):
    receiver, arrived, answer_first = slow_receiver
    t0 = clock.now()
    clock.pin(t0)
    delivery_id = one_delivery(api, sender, receiver, t0)
    # The message waited in a backlog for almost the whole lease before a worker took it.
    clock.pin(t0 + webhooks.LEASE - timedelta(seconds=1))
    first = threading.Thread(target=lambda: db(deliver_once(delivery_id)))
    first.start()
    assert arrived.wait(WAIT_S), "the first attempt's POST never reached the receiver"  # now in flight

    if lease_ran_out:  # the first lease ends mid-attempt: the scheduler's tick must not lease it again
        clock.pin(t0 + webhooks.LEASE + timedelta(seconds=1))
        assert db(deliveries.lease_due(clock.now(), 10)) == []
    # A duplicate message (a resend, a redelivered one) arrives meanwhile.
    assert db(deliver_once(delivery_id)) == ("skipped", None)

    answer_first.set()
    first.join(WAIT_S)
    assert [r.webhook_id for r in receiver.received] == [r.webhook_id for r in receiver.delivered("/in")]
    assert len(receiver.received) == 1, "two attempts of one delivery at once"
    row = db(webhooks.Delivery.select().where(webhooks.Delivery.id == delivery_id).first().run())
    assert (row["status"], row["attempts"], row["leased_until"]) == ("succeeded", 1, None)
