"""The `data` of every event tenure records and posts to webhook endpoints, one Struct per type.

The code that records an event builds its Struct (`events.record(..., data=ProductRenewed(...))`),
so a payload cannot lose or misname a field without failing where it is built; the OpenAPI
document's `webhooks` (web/event_catalog.py) are generated from the same Structs. A delivery
posts `{"type", "timestamp", "data"}` (`Delivered`), `data` being the Struct's fields plus
`EventIds` (worker/webhooks/delivery.py).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from rules.webhooks import EVENT_TYPES, PING

Instant = Annotated[str, Meta(description="RFC 3339, UTC", extra_json_schema={"format": "date-time"})]
State = Annotated[str, Meta(description="active, grace, redemption, pending_delete or deleted")]


class MoneyData(Struct):
    amount: Annotated[int, Meta(description="minor units")]
    currency: str


class ErrorData(Struct):
    code: str
    message: str


class ClaimData(Struct):
    status: str
    expires_at: Instant


class EventIds(Struct):
    """Added to every event's `data` when it is posted."""

    organization_id: Annotated[
        str,
        Meta(
            description="the organization told (for a reseller client's "
            "product: the reseller), except where the event "
            "names another: client.released and "
            "organization.claimed give the new organization"
        ),
    ]
    product_id: str | None
    operation_id: str | None


class OperationSucceeded(Struct):
    kind: str
    result: dict[str, Any]  # the operation's result, as GET /v1/operations/{id} shows it


class OperationFailed(Struct):
    kind: str
    error: ErrorData


class ProductPurchased(Struct):
    kind: str
    name: str
    client_id: str | None
    product_id: str
    price: MoneyData
    expires_at: Instant


class ProductRenewed(Struct):
    client_id: str | None
    product_id: str
    price: MoneyData
    restore_fee: MoneyData
    previous_expires_at: Instant
    expires_at: Instant


class ProductExpiring(Struct):
    name: str
    kind: str
    client_id: str | None
    days_before: int
    expires_at: Instant
    autorenew: bool


class ProductStateChanged(Struct):
    """`product.expired` (active -> grace) and `product.state_changed` (each later state)."""

    name: str
    kind: str
    client_id: str | None
    expires_at: Instant
    from_state: State = msgspec.field(name="from")
    to_state: State = msgspec.field(name="to")


class ProductTransferred(Struct):
    """Between a reseller and its clients (`from_client`, `to_client`), or out of the reseller
    with a released client (`from_reseller`, `to_organization`)."""

    product_id: str
    from_client: str | None = None
    to_client: str | None = None
    from_reseller: str | None = None
    to_organization: str | None = None


class ClientReleased(Struct):
    organization_id: str
    client_id: str
    product_ids: list[str]
    claim: ClaimData


class TierChanged(Struct):
    from_tier: str = msgspec.field(name="from")
    to_tier: str = msgspec.field(name="to")
    discount_percent: int
    volume_12m: MoneyData


class EndpointDisabled(Struct):
    endpoint_id: str
    url: str
    reason: str


class OrganizationClaimed(Struct):
    organization_id: str
    client_id: str
    claimed_at: Instant


class ForecastData(Struct):
    amount: Annotated[int, Meta(description="minor units")]
    currency: str
    products: Annotated[int, Meta(description="how many autorenewals fall due in the next 31 days")]


class BillingLowBalance(Struct):
    balance: MoneyData
    low_balance_threshold: MoneyData
    autorenew_forecast: ForecastData


class Ping(Struct):
    endpoint_id: str


PAYLOADS: dict[str, type[Struct]] = {
    "operation.succeeded": OperationSucceeded,
    "operation.failed": OperationFailed,
    "product.purchased": ProductPurchased,
    "product.renewed": ProductRenewed,
    "product.expiring": ProductExpiring,
    "product.expired": ProductStateChanged,
    "product.state_changed": ProductStateChanged,
    "product.transferred": ProductTransferred,
    "client.released": ClientReleased,
    "tier.changed": TierChanged,
    "endpoint.disabled": EndpointDisabled,
    "organization.claimed": OrganizationClaimed,
    "billing.low_balance": BillingLowBalance,
    PING: Ping,
}
assert set(PAYLOADS) == EVENT_TYPES | {PING}, "every event type has its payload Struct"


class Delivered(Struct, omit_defaults=True):
    """The body of a webhook POST."""

    type: str
    timestamp: Instant
    data: dict[str, Any]  # the event's Struct, then EventIds
    sandbox: bool = False  # a sandbox organization's event (sent only when true)


def stored(data: Struct | dict) -> dict:
    """The event's data as the events table keeps it (a dict only for tests' synthetic events)."""
    return msgspec.to_builtins(data)


def money(amount: dict) -> MoneyData:
    return MoneyData(amount=amount["amount"], currency=amount["currency"])
