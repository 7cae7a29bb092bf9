"""Webhook endpoints and deliveries (out), inbound secrets and seen message ids (in)."""

import base64
import secrets
from datetime import datetime, timedelta
from enum import StrEnum

import msgspec
from piccolo.columns import Array, Boolean, ForeignKey, Integer, OnDelete, Text, Timestamptz, Varchar
from piccolo.table import Table

from runtime.ids import new_id
from tables import secrets_at_rest
from tables.organizations import Organization
from tables.references import DELIVERY, EVENT, reference

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
