"""Deliveries of events to webhook endpoints: claiming the events to fan out and the endpoints they
go to, leasing the deliveries due, their attempts and outcomes, and an endpoint's delivery history."""

from datetime import datetime

import msgspec
from piccolo.custom_types import Combinable

from runtime.ids import new_id
from tables import leases, secrets_at_rest
from tables.webhooks import LEASE, Delivery, DeliveryAttempt, DeliveryStatus, WebhookEndpoint


class DeliveryRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    endpoint_id: str
    event_id: str
    status: DeliveryStatus
    attempts: int  # attempts started so far
    next_attempt_at: datetime | None  # when the next attempt is due; None once it ended
    created_at: datetime


class AttemptRecord(msgspec.Struct, frozen=True, kw_only=True):
    attempted_at: datetime
    status_code: int | None  # None when no answer came
    duration_ms: int
    response_excerpt: str  # the start of the answer's body
    error: str | None


async def claim_events(
    now: datetime,
    limit: int,
    *,
    operation_id: str | None = None,
    organization_id: str | None = None,
    operation_ids: list[str] | None = None,
    not_of: list[str] | None = None,
) -> list[dict]:
    """Marks undispatched events as dispatched (each is taken by one caller) and returns them;
    none of the organizations in `not_of`."""
    from tables.events import Event

    free: Combinable = Event.dispatched_at.is_null()
    if not_of:
        free &= Event.organization_id.not_in(not_of)
    if operation_id:
        free &= Event.operation_id == operation_id
    if operation_ids:
        free &= Event.operation_id.is_in(operation_ids)
    if organization_id:
        free &= Event.organization_id == organization_id
    return await leases.take_due(
        Event,
        free=free,
        stamp={Event.dispatched_at: now},
        order_by=Event.id,
        limit=limit,
        returning=(Event.type, Event.organization_id),
    )


async def enabled_endpoints(org_ids: list[str]) -> list[dict]:
    return await WebhookEndpoint.select(
        WebhookEndpoint.id, WebhookEndpoint.organization_id, WebhookEndpoint.event_types
    ).where(WebhookEndpoint.organization_id.is_in(org_ids) & (WebhookEndpoint.enabled == True))  # noqa: E712


async def organizations_with_endpoints(org_ids: list[str]) -> set[str]:
    """Which of these organizations have an enabled endpoint (one indexed read)."""
    rows = await WebhookEndpoint.raw(
        "SELECT DISTINCT organization_id FROM webhook_endpoints WHERE enabled = {} AND organization_id IN ("
        + ", ".join("{}" for _ in org_ids)
        + ")",
        True,
        *org_ids,
    ).run()
    return {row["organization_id"] for row in rows}


async def add_deliveries(pairs: list[tuple[str, str]], now: datetime) -> list[str]:
    """One delivery per (endpoint, event), leased for an immediate first attempt; returns the new ids."""
    if not pairs:
        return []
    rows = [
        Delivery(
            id=new_id("dlv"),
            endpoint_id=endpoint_id,
            event_id=event_id,
            delivery_key=f"{endpoint_id}:{event_id}",
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            leased_until=now + LEASE,
            created_at=now,
            updated_at=now,
        )
        for endpoint_id, event_id in pairs
    ]
    inserted = (
        await Delivery.insert(*rows)
        .on_conflict(target=Delivery.delivery_key, action="DO NOTHING")
        .returning(Delivery.id)
    )
    return [r["id"] for r in inserted]


async def lease_due(now: datetime, limit: int, resend_before: datetime | None = None) -> list[str]:
    """Pending deliveries whose time has come and which nobody holds: lease them, return ids.

    A delivery's hold (`leased_until`) starts when its message is sent (at `leased_until -
    LEASE`) and again when its attempt starts. With `resend_before` (when the oldest message
    still waiting on the webhooks queue was sent, less a margin), one whose message was sent
    after it is still waiting in that first-in-first-out queue, however long the backlog
    takes to drain: it is not taken again.
    """
    free = Delivery.leased_until.is_null() | (Delivery.leased_until < now)
    if resend_before is not None:
        free = Delivery.leased_until.is_null() | (
            (Delivery.leased_until < now) & (Delivery.leased_until < resend_before + LEASE)
        )
    due = (Delivery.status == DeliveryStatus.PENDING) & (Delivery.next_attempt_at <= now) & free
    leased = await leases.take_due(
        Delivery, free=due, stamp={Delivery.leased_until: now + LEASE}, order_by=Delivery.next_attempt_at, limit=limit
    )
    return [r["id"] for r in leased]


def signing_secrets(hook: dict, now: datetime) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one
    during the overlap after a rotation."""
    current = [secrets_at_rest.secret_of(hook)]
    if hook["previous_sealed_secret"] and hook["previous_secret_until"] and hook["previous_secret_until"] > now:
        return current + [secrets_at_rest.box().open(hook["previous_sealed_secret"])]
    return current


async def add_ping(org_id: str, endpoint_id: str, now: datetime) -> tuple[str, str]:
    """A `ping` event for this endpoint only (recorded as already dispatched, so no other
    endpoint gets it, whatever it subscribes to) and its delivery; answers (event, delivery) ids."""
    from rules.webhooks import PING
    from tables.event_payloads import Ping, stored
    from tables.events import Event

    event_id = new_id("evt")
    await Event.insert(
        Event(
            id=event_id,
            type=PING,
            organization_id=org_id,
            product_id=None,
            operation_id=None,
            data=stored(Ping(endpoint_id=endpoint_id)),
            dedupe_key=None,
            created_at=now,
            dispatched_at=now,
        )
    )
    [delivery_id] = await add_deliveries([(endpoint_id, event_id)], now)
    return event_id, delivery_id


async def record_attempt(
    delivery_id: str, now: datetime, *, status_code: int | None, duration_ms: int, excerpt: str, error: str | None
) -> None:
    await DeliveryAttempt.insert(
        DeliveryAttempt(
            id=new_id("att"),
            delivery_id=delivery_id,
            attempted_at=now,
            status_code=status_code,
            duration_ms=duration_ms,
            response_excerpt=excerpt,
            error=error,
        )
    )


async def settle(delivery_id: str, now: datetime, status: DeliveryStatus, next_attempt_at: datetime | None) -> None:
    await Delivery.update(
        {
            Delivery.status: status,
            Delivery.next_attempt_at: next_attempt_at,
            Delivery.leased_until: None,
            Delivery.updated_at: now,
        }
    ).where(Delivery.id == delivery_id)


async def deliveries_page(endpoint_id: str, after: str | None, limit: int) -> list[DeliveryRecord]:
    query = Delivery.select(
        Delivery.id,
        Delivery.endpoint_id,
        Delivery.event_id,
        Delivery.status,
        Delivery.attempts,
        Delivery.next_attempt_at,
        Delivery.created_at,
    ).where(Delivery.endpoint_id == endpoint_id)
    if after:
        query = query.where(Delivery.id < after)
    rows = await query.order_by(Delivery.id, ascending=False).limit(limit)
    return [DeliveryRecord(**{**r, "status": DeliveryStatus(r["status"])}) for r in rows]


async def attempts_of(delivery_ids: list[str]) -> dict[str, list[AttemptRecord]]:
    """Each delivery's attempts, oldest first."""
    if not delivery_ids:
        return {}
    rows = (
        await DeliveryAttempt.select(
            DeliveryAttempt.delivery_id,
            DeliveryAttempt.attempted_at,
            DeliveryAttempt.status_code,
            DeliveryAttempt.duration_ms,
            DeliveryAttempt.response_excerpt,
            DeliveryAttempt.error,
        )
        .where(DeliveryAttempt.delivery_id.is_in(delivery_ids))
        .order_by(DeliveryAttempt.attempted_at)
    )
    grouped: dict[str, list[AttemptRecord]] = {d: [] for d in delivery_ids}
    for row in rows:
        grouped[row.pop("delivery_id")].append(AttemptRecord(**row))
    return grouped


async def reset_for_retry(endpoint_id: str, delivery_id: str, now: datetime) -> bool:
    """A person asks for one more attempt now (whatever the delivery's state)."""
    reset = (
        await Delivery.update(
            {
                Delivery.status: DeliveryStatus.PENDING,
                Delivery.next_attempt_at: now,
                Delivery.leased_until: now + LEASE,
                Delivery.updated_at: now,
            }
        )
        .where(
            (Delivery.id == delivery_id)
            & (Delivery.endpoint_id == endpoint_id)
            & (
                (Delivery.status != DeliveryStatus.PENDING)
                | Delivery.leased_until.is_null()
                | (Delivery.leased_until < now)
            )
        )
        .returning(Delivery.id)
    )
    return bool(reset)


async def pending_deliveries() -> int:
    """Deliveries waiting for an attempt (through the status index; attempts are counted by workers)."""
    return await Delivery.count().where(Delivery.status == DeliveryStatus.PENDING)
