"""Webhook endpoints and deliveries (out), inbound secrets and seen message ids (in)."""

import base64
import secrets
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import msgspec
from piccolo.columns import Array, Boolean, ForeignKey, Integer, OnDelete, Text, Timestamptz, Varchar
from piccolo.custom_types import Combinable
from piccolo.table import Table

from runtime.ids import new_id
from tables import leases, secrets_at_rest
from tables.organizations import Organization
from tables.references import DELIVERY, EVENT, ORGANIZATION, reference

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A signing secret, for an endpoint (out) or a reseller's senders (in): `whsec_` + base64
    of 24 random bytes, the format `standardwebhooks.Webhook` accepts."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


class DeliveryStatus(StrEnum):
    """A delivery waits for its next attempt, or ended: answered 2xx, given up, or cancelled
    with its endpoint's disabling (an enabling resumes those)."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class WebhookEndpoint(Table, tablename="webhook_endpoints"):
    id = Varchar(length=40, primary_key=True)
    organization_id = ForeignKey(
        references=Organization,
        on_delete=OnDelete.restrict,
        null=False,
        index=True,
        help_text="The organization that owns it.",
    )
    url = Varchar(length=2000)
    event_types = Array(
        base_column=Varchar(length=60), default=list, help_text="The event types sent to it; empty: all of them."
    )
    secret = Varchar(length=100, help_text="Clear, from before encryption at rest; emptied by `tenure migrate`.")
    sealed_secret = Text(null=True, default=None, help_text="The signing secret, encrypted (tables.secrets_at_rest).")
    enabled = Boolean(default=True)
    disabled_reason = Varchar(
        length=100, null=True, default=None, help_text="disabled_on_request, or why it was disabled after failing."
    )
    failing_since = Timestamptz(
        null=True, default=None, help_text="First failed attempt since its last success; null: not failing."
    )
    created_at = Timestamptz()
    description = Varchar(length=500, default="")
    previous_sealed_secret = Text(
        null=True,
        default=None,
        help_text="The secret before the last rotation, encrypted; signs too until previous_secret_until.",
    )
    previous_secret_until = Timestamptz(null=True, default=None)


class Delivery(Table, tablename="deliveries"):
    id = Varchar(length=40, primary_key=True)
    endpoint_id = Varchar(length=40, index=True)
    event_id = reference(EVENT, help_text="The event it carries.")
    delivery_key = Varchar(length=100, unique=True, help_text="endpoint id + event id")
    status = Varchar(length=20, choices=DeliveryStatus, default=DeliveryStatus.PENDING, index=True)
    attempts = Integer(default=0, help_text="Attempts started so far.")
    next_attempt_at = Timestamptz(
        null=True, default=None, index=True, help_text="When the next attempt is due; null once it ended."
    )
    leased_until = Timestamptz(
        null=True,
        default=None,
        help_text="Set when a deliver message is sent; an attempt may start only while it holds.",
    )
    created_at = Timestamptz()
    updated_at = Timestamptz(null=True, default=None, index=True)


class DeliveryAttempt(Table, tablename="delivery_attempts"):
    id = Varchar(length=40, primary_key=True)
    delivery_id = reference(DELIVERY, help_text="The delivery it attempted.")
    attempted_at = Timestamptz(index=True)
    status_code = Integer(null=True, default=None, help_text="The HTTP status answered; null when no answer came.")
    duration_ms = Integer(default=0)
    response_excerpt = Text(default="", help_text="The start of the answer's body, for the endpoint's owner.")
    error = Varchar(length=200, null=True, default=None)


class InboundSecret(Table, tablename="inbound_secrets"):
    id = Varchar(length=40, primary_key=True)
    organization_id = reference(ORGANIZATION, help_text="The organization whose back office signs with it.")
    secret = Varchar(length=100, help_text="Clear, from before encryption at rest; emptied by `tenure migrate`.")
    sealed_secret = Text(null=True, default=None, help_text="The verifying secret, encrypted (tables.secrets_at_rest).")
    created_at = Timestamptz()
    retired_at = Timestamptz(null=True, default=None, help_text="When it stopped verifying; null: still in use.")


class InboundMessage(Table, tablename="inbound_messages"):
    """A verified inbound webhook id, kept (not cached) so a resend gets the same operation."""

    message_key = Varchar(length=300, primary_key=True, help_text="organization id + webhook-id")
    operation_id = Varchar(length=40, help_text="The operation the message made; a resend answers it again.")
    received_at = Timestamptz(index=True)


class EndpointRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A webhook endpoint as its owner sees it: never its secrets."""

    id: str
    organization_id: str
    url: str
    event_types: list[str]  # sorted; empty: every type
    enabled: bool
    disabled_reason: str | None  # disabled_on_request, or why it was disabled after failing
    failing_since: datetime | None  # first failed attempt since its last success
    created_at: datetime
    description: str


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


_ENDPOINT_COLUMNS = (
    WebhookEndpoint.id,
    WebhookEndpoint.organization_id,
    WebhookEndpoint.url,
    WebhookEndpoint.event_types,
    WebhookEndpoint.enabled,
    WebhookEndpoint.disabled_reason,
    WebhookEndpoint.failing_since,
    WebhookEndpoint.created_at,
    WebhookEndpoint.description,
)


def _endpoint(row: dict) -> EndpointRecord:
    return EndpointRecord(**{**row, "description": row["description"] or ""})


# --- queries -----------------------------------------------------------------


LEASE = timedelta(minutes=2)  # longer than the 15 s HTTP timeout plus bookkeeping
# After a rotation the previous secret signs too, for this long, so receivers can roll.
PREVIOUS_SECRET_OVERLAP = timedelta(hours=24)
DISABLED_ON_REQUEST = "disabled_on_request"


async def create_endpoint(
    org_id: str, url: str, event_types: frozenset[str], secret: str, now: datetime, description: str = ""
) -> EndpointRecord:
    """Stores the endpoint with its secret encrypted; the record returned holds neither."""
    made = EndpointRecord(
        id=new_id("whe"),
        organization_id=org_id,
        url=url,
        event_types=sorted(event_types),
        enabled=True,
        disabled_reason=None,
        failing_since=None,
        created_at=now,
        description=description,
    )
    fields = msgspec.structs.asdict(made)
    await WebhookEndpoint.insert(WebhookEndpoint(**fields, secret="", sealed_secret=secrets_at_rest.seal(secret)))
    return made


async def endpoint(org_id: str, endpoint_id: str) -> EndpointRecord | None:
    row = (
        await WebhookEndpoint.select(*_ENDPOINT_COLUMNS)
        .where((WebhookEndpoint.id == endpoint_id) & (WebhookEndpoint.organization_id == org_id))
        .first()
    )
    return None if row is None else _endpoint(row)


async def endpoints_of(org_id: str) -> list[EndpointRecord]:
    rows = (
        await WebhookEndpoint.select(*_ENDPOINT_COLUMNS)
        .where(WebhookEndpoint.organization_id == org_id)
        .order_by(WebhookEndpoint.id)
    )
    return [_endpoint(r) for r in rows]


async def delete_endpoint(endpoint_id: str, now: datetime) -> None:
    await Delivery.update(
        {Delivery.status: DeliveryStatus.CANCELLED, Delivery.leased_until: None, Delivery.updated_at: now}
    ).where((Delivery.endpoint_id == endpoint_id) & (Delivery.status == DeliveryStatus.PENDING))
    await WebhookEndpoint.delete().where(WebhookEndpoint.id == endpoint_id)


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


async def delivery_context(delivery_id: str, now: datetime | None = None) -> tuple[dict, dict, dict] | None:
    """The delivery with its endpoint (`secrets`: those that sign now, decrypted, the current
    one first and also in `secret`) and event, or None if any is gone."""
    from tables.events import Event

    delivery = await Delivery.select().where(Delivery.id == delivery_id).first()
    if delivery is None:
        return None
    hook = await WebhookEndpoint.select().where(WebhookEndpoint.id == delivery["endpoint_id"]).first()
    event = await Event.select().where(Event.id == delivery["event_id"]).output(load_json=True).first()
    if hook is None or event is None:
        return None
    hook["secrets"] = signing_secrets(hook, now or datetime.now(UTC))
    hook["secret"] = hook["secrets"][0]
    del hook["sealed_secret"], hook["previous_sealed_secret"]
    return delivery, hook, event


def signing_secrets(hook: dict, now: datetime) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one
    during the overlap after a rotation."""
    current = [secrets_at_rest.secret_of(hook)]
    if hook["previous_sealed_secret"] and hook["previous_secret_until"] and hook["previous_secret_until"] > now:
        return current + [secrets_at_rest.box().open(hook["previous_sealed_secret"])]
    return current


async def update_endpoint(endpoint_id: str, changes: dict) -> None:
    """Changes url, event_types (a sorted list) or description."""
    if changes:
        await WebhookEndpoint.update({getattr(WebhookEndpoint, name): value for name, value in changes.items()}).where(
            WebhookEndpoint.id == endpoint_id
        )


async def rotate_secret(endpoint_id: str, secret: str, now: datetime) -> datetime:
    """Makes `secret` the endpoint's secret; the current one keeps signing (beside it) for
    PREVIOUS_SECRET_OVERLAP, a previous one still in its overlap stops. Answers until when.
    Call in a transaction (the row is read, then written)."""
    row = (
        await WebhookEndpoint.select(WebhookEndpoint.secret, WebhookEndpoint.sealed_secret)
        .where(WebhookEndpoint.id == endpoint_id)
        .first()
    )
    previous = row["sealed_secret"] or secrets_at_rest.seal(row["secret"])
    until = now + PREVIOUS_SECRET_OVERLAP
    await WebhookEndpoint.update(
        {
            WebhookEndpoint.sealed_secret: secrets_at_rest.seal(secret),
            WebhookEndpoint.secret: "",
            WebhookEndpoint.previous_sealed_secret: previous,
            WebhookEndpoint.previous_secret_until: until,
        }
    ).where(WebhookEndpoint.id == endpoint_id)
    return until


async def enable_endpoint(endpoint_id: str, now: datetime) -> list[str]:
    """Enables a disabled endpoint and resumes the deliveries its disabling cancelled (due
    now, leased for an immediate attempt); answers their ids (none if it was enabled)."""
    changed = (
        await WebhookEndpoint.update(
            {WebhookEndpoint.enabled: True, WebhookEndpoint.disabled_reason: None, WebhookEndpoint.failing_since: None}
        )
        .where(
            (WebhookEndpoint.id == endpoint_id) & (WebhookEndpoint.enabled == False)  # noqa: E712
        )
        .returning(WebhookEndpoint.id)
    )
    if not changed:
        return []
    resumed = (
        await Delivery.update(
            {
                Delivery.status: DeliveryStatus.PENDING,
                Delivery.next_attempt_at: now,
                Delivery.leased_until: now + LEASE,
                Delivery.updated_at: now,
            }
        )
        .where((Delivery.endpoint_id == endpoint_id) & (Delivery.status == DeliveryStatus.CANCELLED))
        .returning(Delivery.id)
    )
    return [r["id"] for r in resumed]


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


async def endpoint_succeeded(endpoint_id: str) -> None:
    await WebhookEndpoint.update({WebhookEndpoint.failing_since: None}).where(WebhookEndpoint.id == endpoint_id)


async def endpoint_failed(endpoint_id: str, now: datetime) -> datetime:
    """Notes the failure; returns since when the endpoint has been failing."""
    await WebhookEndpoint.update({WebhookEndpoint.failing_since: now}).where(
        (WebhookEndpoint.id == endpoint_id) & WebhookEndpoint.failing_since.is_null()
    )
    row = await WebhookEndpoint.select(WebhookEndpoint.failing_since).where(WebhookEndpoint.id == endpoint_id).first()
    return row["failing_since"]


async def disable_endpoint(endpoint_id: str, reason: str, now: datetime) -> bool:
    """Disables the endpoint and cancels its pending deliveries; False if it already was."""
    changed = (
        await WebhookEndpoint.update({WebhookEndpoint.enabled: False, WebhookEndpoint.disabled_reason: reason})
        .where(
            (WebhookEndpoint.id == endpoint_id) & (WebhookEndpoint.enabled == True)  # noqa: E712
        )
        .returning(WebhookEndpoint.id)
    )
    if changed:
        await Delivery.update(
            {Delivery.status: DeliveryStatus.CANCELLED, Delivery.leased_until: None, Delivery.updated_at: now}
        ).where((Delivery.endpoint_id == endpoint_id) & (Delivery.status == DeliveryStatus.PENDING))
    return bool(changed)


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


async def unhealthy_endpoints(limit: int = 50) -> list[dict]:
    """Endpoints disabled or currently failing, for the ops page."""
    return (
        await WebhookEndpoint.select(
            WebhookEndpoint.id,
            WebhookEndpoint.organization_id,
            WebhookEndpoint.url,
            WebhookEndpoint.enabled,
            WebhookEndpoint.disabled_reason,
            WebhookEndpoint.failing_since,
        )
        .where(
            (WebhookEndpoint.enabled == False) | WebhookEndpoint.failing_since.is_not_null()  # noqa: E712
        )
        .order_by(WebhookEndpoint.id, ascending=False)
        .limit(limit)
    )
