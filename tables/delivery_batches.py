"""Deliveries taken and settled many at a time: a worker's batch costs a few statements, not a few per delivery."""

from __future__ import annotations

from datetime import datetime

from runtime.ids import new_id
from tables import deliveries, leases
from tables.webhooks import LEASE, Delivery, DeliveryAttempt, DeliveryStatus, WebhookEndpoint


async def contexts(delivery_ids: list[str], now: datetime) -> dict[str, tuple[dict, dict, dict]]:
    """Each delivery still there with its endpoint (`secrets`: those that sign now, `deliveries.signing_secrets`,
    the current one first and also in `secret`) and its event, in three statements; the missing
    ones are left out."""
    from tables.events import Event

    if not delivery_ids:
        return {}
    rows = await Delivery.select().where(Delivery.id.is_in(delivery_ids))
    if not rows:
        return {}
    hooks = {
        h["id"]: h
        for h in await WebhookEndpoint.select().where(
            WebhookEndpoint.id.is_in(sorted({r["endpoint_id"] for r in rows}))
        )
    }
    found = {
        e["id"]: e
        for e in await Event.select()
        .where(Event.id.is_in(sorted({r["event_id"] for r in rows})))
        .output(load_json=True)
    }
    for hook in hooks.values():
        hook["secrets"] = deliveries.signing_secrets(hook, now)
        hook["secret"] = hook["secrets"][0]
        del hook["sealed_secret"], hook["previous_sealed_secret"]
    return {
        r["id"]: (r, hooks[r["endpoint_id"]], found[r["event_id"]])
        for r in rows
        if r["endpoint_id"] in hooks and r["event_id"] in found
    }


async def claim_attempts(delivery_ids: list[str], now: datetime) -> dict[str, int]:
    """Starts an attempt of each delivery that is pending and due, in one conditional UPDATE (a
    lease, `leases.stamp_where`); answers delivery id -> the attempt's number. A delivery another
    worker started, one in flight, settled or waiting for a retry is left out.

    Each attempt's lease starts now, however long its message waited in a backlog: it holds the
    delivery until it settles (or for LEASE, should its worker die), and pushes `next_attempt_at`
    past now, so a late duplicate message or a scheduler tick cannot start a second attempt
    alongside it."""
    if not delivery_ids:
        return {}
    claimed = await leases.stamp_where(
        Delivery,
        {
            Delivery.attempts: Delivery.attempts + 1,
            Delivery.updated_at: now,
            Delivery.next_attempt_at: now + LEASE,
            Delivery.leased_until: now + LEASE,
        },
        Delivery.id.is_in(delivery_ids)
        & (Delivery.status == DeliveryStatus.PENDING)
        & (Delivery.next_attempt_at <= now),
        (Delivery.id, Delivery.attempts),
    )
    return {r["id"]: r["attempts"] for r in claimed}


async def settle_delivered(answers: list[tuple[str, str, dict]], now: datetime) -> None:
    """Records the attempts that were answered with success and settles their deliveries:
    `answers` holds (delivery id, endpoint id, attempt fields). Call in a transaction."""
    if not answers:
        return
    await DeliveryAttempt.insert(
        *[
            DeliveryAttempt(id=new_id("att"), delivery_id=delivery_id, attempted_at=now, **fields)
            for delivery_id, _, fields in answers
        ]
    )
    await Delivery.update(
        {
            Delivery.status: DeliveryStatus.SUCCEEDED,
            Delivery.next_attempt_at: None,
            Delivery.leased_until: None,
            Delivery.updated_at: now,
        }
    ).where(Delivery.id.is_in([delivery_id for delivery_id, _, _ in answers]))
    await WebhookEndpoint.update({WebhookEndpoint.failing_since: None}).where(
        WebhookEndpoint.id.is_in(sorted({endpoint_id for _, endpoint_id, _ in answers}))
        & WebhookEndpoint.failing_since.is_not_null()
    )
