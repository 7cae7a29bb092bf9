"""One delivery, one attempt at a time: an attempt in flight holds its delivery until it settles."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from tables import events, webhooks
from tables.clock import clock
from tables.engine import transaction
from tests.api import builders
from tests.integration.flows import db
from tests.integration.receiver import Receiver
from worker.webhooks.client import pinned_client
from worker.webhooks.delivery import deliver
from worker.webhooks.fanout import fan_out

SLOW_S = 1.0  # the receiver's first answer takes this long (well under the 15 s timeout)


@pytest.fixture
def slow_receiver():
    """A receiver whose first answer waits until the test lets it go."""
    receiver, answer_first = Receiver(), threading.Event()
    receiver.behaviour = lambda path, wid, n: (answer_first.wait(10), (200, {}))[1] if n == 1 else (200, {})
    receiver.base = receiver.start()
    yield receiver, answer_first
    answer_first.set()
    receiver.stop()


def one_delivery(api, sender, receiver, at) -> str:
    owner = builders.person(api)
    org = builders.organization(api, owner)
    answer = api.post(f"/v1/organizations/{org}/webhook-endpoints", headers=owner.auth,
                      json={"url": receiver.base + "/in", "event_types": []})
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
    receiver, answer_first = slow_receiver
    t0 = clock.now()
    clock.pin(t0)
    delivery_id = one_delivery(api, sender, receiver, t0)
    # The message waited in a backlog for almost the whole lease before a worker took it.
    clock.pin(t0 + webhooks.LEASE - timedelta(seconds=1))
    first = threading.Thread(target=lambda: db(deliver_once(delivery_id)))
    first.start()
    time.sleep(SLOW_S)  # its POST is in flight

    if lease_ran_out:  # the first lease ends mid-attempt: the scheduler's tick must not lease it again
        clock.pin(t0 + webhooks.LEASE + timedelta(seconds=1))
        assert db(webhooks.lease_due(clock.now(), 10)) == []
    # A duplicate message (a resend, a redelivered one) arrives meanwhile.
    assert db(deliver_once(delivery_id)) == ("skipped", None)

    answer_first.set()
    first.join(10)
    assert [r.webhook_id for r in receiver.received] == [r.webhook_id for r in receiver.delivered("/in")]
    assert len(receiver.received) == 1, "two attempts of one delivery at once"
    row = db(webhooks.Delivery.select().where(webhooks.Delivery.id == delivery_id).first().run())
    assert (row["status"], row["attempts"], row["leased_until"]) == ("succeeded", 1, None)
