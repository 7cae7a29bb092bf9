"""A backlog of deliveries that outlives the lease is drained once: the scheduler does not
send again what still waits in the queue, and a lost message is still sent again."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from runtime.clock import clock
from tables import events, webhooks
from tables.engine import transaction
from tests.api import builders
from tests.integration.flows import db
from worker.queue import DELIVERY_BATCH, WEBHOOKS_QUEUE
from worker.webhooks.fanout import RESEND_MARGIN, fan_out, send_due

BACKLOG = 2 * DELIVERY_BATCH + 20  # three messages, the last one partly filled
LONG_AFTER = webhooks.LEASE + RESEND_MARGIN + timedelta(minutes=1)


def queue_backlog(api, sender, receiver) -> None:
    """BACKLOG deliveries to one endpoint, their messages sent now; no worker runs yet."""
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
            for n in range(BACKLOG):
                await events.record("tier.changed", org, clock.now(), data={"from": "A", "to": str(n)})
        return await fan_out(sender)

    assert db(make()) == BACKLOG


def deliveries() -> list[dict]:
    return db(webhooks.Delivery.select(webhooks.Delivery.status, webhooks.Delivery.attempts).run())


def test_a_backlog_longer_than_the_lease_is_not_taken_twice(api, workers, broker, sender, receiver):
    clock.pin(clock.now())
    queue_backlog(api, sender, receiver)
    assert broker.client.llen(f"dramatiq:{WEBHOOKS_QUEUE}") == 3  # DELIVERY_BATCH ids a message

    # The workers are far behind: the messages wait past the lease, the scheduler ticks.
    clock.advance(LONG_AFTER)
    assert db(send_due(sender)) == 0, "deliveries still waiting in the queue were sent again"

    workers()
    broker.join(WEBHOOKS_QUEUE, interval=10, timeout=30_000)
    assert db(send_due(sender)) == 0
    assert Counter((d["status"], d["attempts"]) for d in deliveries()) == {("succeeded", 1): BACKLOG}
    assert len(receiver.received) == BACKLOG
    assert len({r.webhook_id for r in receiver.delivered("/in")}) == BACKLOG


def test_a_lost_message_is_sent_again_once_its_hold_runs_out(api, workers, broker, sender, receiver):
    clock.pin(clock.now())
    queue_backlog(api, sender, receiver)
    broker.flush(WEBHOOKS_QUEUE)  # the broker lost them

    clock.advance(webhooks.LEASE - timedelta(seconds=1))
    assert db(send_due(sender)) == 0  # still held: their messages may yet arrive
    clock.advance(timedelta(seconds=2))
    assert db(send_due(sender)) == BACKLOG

    workers()
    broker.join(WEBHOOKS_QUEUE, interval=10, timeout=30_000)
    assert Counter((d["status"], d["attempts"]) for d in deliveries()) == {("succeeded", 1): BACKLOG}
    assert len(receiver.received) == BACKLOG
