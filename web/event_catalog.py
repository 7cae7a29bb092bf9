"""The events tenure posts to webhook endpoints, as OpenAPI 3.1 `webhooks`.

One entry per event type, generated from the Structs the event's data is built with
(tables/event_payloads.py), with the Standard Webhooks headers and an example built as
that Struct too: the catalog, the example and the payload cannot disagree.
"""

from __future__ import annotations

import msgspec

from rules.webhooks import PING
from tables import event_payloads as p

REF = "#/components/schemas/{name}"
ORG, CLIENT, PRODUCT, OPERATION = "org_2x8Kq4", "cli_7fT2mA", "prd_9cW1zR", "op_3hN6vB"
AT, EXPIRES = "2027-01-31T09:30:00Z", "2028-01-31T00:00:00Z"
PRICE = p.MoneyData(amount=1350, currency="EUR")

SUMMARIES = {
    "operation.succeeded": "An operation finished; `result` is the operation's result",
    "operation.failed": "An operation failed; `error` says why (as on the operation)",
    "product.purchased": "A product was bought (for the organization, or a reseller's client)",
    "product.renewed": "A product was renewed (by request or autorenew)",
    "product.expiring": "A reminder, 30, 7 and 1 days before expiry",
    "product.expired": "A product expired: it is in grace",
    "product.state_changed": "A product moved on: grace -> redemption -> pending_delete -> deleted",
    "product.transferred": "A product changed hands",
    "client.released": "A reseller released a client to an organization of its own",
    "tier.changed": "The organization's volume tier changed",
    "endpoint.disabled": "A webhook endpoint was disabled (410, or 5 days of failures)",
    "organization.claimed": "A released client's organization was claimed by its owner",
    "billing.low_balance": "The prepaid balance went below the low-balance threshold or the autorenew "
    "forecast (once per crossing)",
    PING: "Sent on request (POST .../webhook-endpoints/{endpoint}/test), whatever the subscription",
}

EXAMPLES: dict[str, msgspec.Struct] = {
    "operation.succeeded": p.OperationSucceeded(kind="purchase", result={"product_id": PRODUCT}),
    "operation.failed": p.OperationFailed(
        kind="renewal",
        error=p.ErrorData(code="insufficient_funds", message="the prepaid balance does not cover 13.50 EUR; add funds"),
    ),
    "product.purchased": p.ProductPurchased(
        kind="domain", name="example.fr", client_id=CLIENT, product_id=PRODUCT, price=PRICE, expires_at=EXPIRES
    ),
    "product.renewed": p.ProductRenewed(
        client_id=CLIENT,
        product_id=PRODUCT,
        price=PRICE,
        restore_fee=p.MoneyData(amount=0, currency="EUR"),
        previous_expires_at=EXPIRES,
        expires_at="2029-01-31T00:00:00Z",
    ),
    "product.expiring": p.ProductExpiring(
        name="example.fr", kind="domain", client_id=CLIENT, days_before=7, expires_at=EXPIRES, autorenew=False
    ),
    "product.expired": p.ProductStateChanged(
        name="example.fr", kind="domain", client_id=CLIENT, expires_at=EXPIRES, from_state="active", to_state="grace"
    ),
    "product.state_changed": p.ProductStateChanged(
        name="example.fr", kind="domain", client_id=None, expires_at=EXPIRES, from_state="grace", to_state="redemption"
    ),
    "product.transferred": p.ProductTransferred(product_id=PRODUCT, from_client=None, to_client=CLIENT),
    "client.released": p.ClientReleased(
        organization_id="org_5mD8sL",
        client_id=CLIENT,
        product_ids=[PRODUCT],
        claim=p.ClaimData(status="pending", expires_at="2027-03-02T09:30:00Z"),
    ),
    "tier.changed": p.TierChanged(
        from_tier="A", to_tier="B", discount_percent=10, volume_12m=p.MoneyData(amount=260_000, currency="EUR")
    ),
    "endpoint.disabled": p.EndpointDisabled(
        endpoint_id="whe_1qA4", url="https://hooks.reseller.example/tenure", reason="gone"
    ),
    "organization.claimed": p.OrganizationClaimed(organization_id="org_5mD8sL", client_id=CLIENT, claimed_at=AT),
    "billing.low_balance": p.BillingLowBalance(
        balance=p.MoneyData(amount=4_200, currency="EUR"),
        low_balance_threshold=p.MoneyData(amount=20_000, currency="EUR"),
        autorenew_forecast=p.ForecastData(amount=41_500, currency="EUR", products=7),
    ),
    PING: p.Ping(endpoint_id="whe_1qA4"),
}

HEADERS = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "the event's id: the same on every attempt, to de-duplicate",
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "seconds since the epoch, when this attempt was signed",
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "`v1,<base64 HMAC-SHA256 of id.timestamp.body>` with the endpoint's secret (two, "
        "space-separated, for 24 h after a rotation)",
    },
]


def body_schema(event_type: str) -> dict:
    data = p.PAYLOADS[event_type].__name__
    return {
        "type": "object",
        "required": ["type", "timestamp", "data"],
        "properties": {
            "type": {"type": "string", "const": event_type},
            "timestamp": {"type": "string", "format": "date-time"},
            "data": {"allOf": [{"$ref": REF.format(name=data)}, {"$ref": REF.format(name="EventIds")}]},
            "sandbox": {
                "type": "boolean",
                "const": True,
                "description": "present on a sandbox organization's events only",
            },
        },
    }


def example(event_type: str) -> dict:
    ids = p.EventIds(
        organization_id=ORG,
        product_id=PRODUCT if event_type.startswith("product.") else None,
        operation_id=OPERATION if event_type.startswith(("operation.", "product.purchased")) else None,
    )
    return msgspec.to_builtins(
        p.Delivered(type=event_type, timestamp=AT, data={**p.stored(EXAMPLES[event_type]), **p.stored(ids)})
    )


def webhooks(schemas: dict) -> dict:
    """The `webhooks` of the document; the payload Structs' schemas are added to `schemas`."""
    _, components = msgspec.json.schema_components([*p.PAYLOADS.values(), p.EventIds], ref_template=REF)
    for name, schema in components.items():
        if schemas.setdefault(name, schema) != schema:
            raise RuntimeError(f"two schemas are named {name}: rename the event payload Struct")
    return {
        event_type: {
            "post": {
                "summary": SUMMARIES[event_type],
                "operationId": "event_" + event_type.replace(".", "_"),
                "tags": ["events"],
                "parameters": HEADERS,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": body_schema(event_type), "example": example(event_type)}
                    },
                },
                "responses": {
                    "200": {
                        "description": "Any 2xx acknowledges the event; 410 disables the "
                        "endpoint at once; anything else is retried"
                    }
                },
            }
        }
        for event_type in sorted(p.PAYLOADS)
    }
