"""Webhook endpoints and deliveries (out), inbound secrets and seen message ids (in)."""

from piccolo.columns import Boolean, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table


class WebhookEndpoint(Table, tablename="webhook_endpoints"):
    id = Varchar(length=40, primary_key=True)
    organization_id = Varchar(length=40, index=True)
    url = Varchar(length=2000)
    event_types = Text(default="", help_text="Space-separated; empty means all.")
    secret = Varchar(length=100)
    enabled = Boolean(default=True)
    disabled_reason = Varchar(length=100, null=True, default=None)
    failing_since = Timestamptz(null=True, default=None)
    created_at = Timestamptz()


class Delivery(Table, tablename="deliveries"):
    id = Varchar(length=40, primary_key=True)
    endpoint_id = Varchar(length=40, index=True)
    event_id = Varchar(length=40)
    delivery_key = Varchar(length=100, unique=True, help_text="endpoint id + event id")
    status = Varchar(length=20, default="pending", index=True)
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(null=True, default=None, index=True)
    leased_until = Timestamptz(
        null=True, default=None,
        help_text="Set when a deliver message is sent; an attempt may start only while it holds.",
    )
    created_at = Timestamptz()
    updated_at = Timestamptz(null=True, default=None)


class DeliveryAttempt(Table, tablename="delivery_attempts"):
    id = Varchar(length=40, primary_key=True)
    delivery_id = Varchar(length=40, index=True)
    attempted_at = Timestamptz()
    status_code = Integer(null=True, default=None)
    duration_ms = Integer(default=0)
    response_excerpt = Text(default="")
    error = Varchar(length=200, null=True, default=None)


class InboundSecret(Table, tablename="inbound_secrets"):
    id = Varchar(length=40, primary_key=True)
    organization_id = Varchar(length=40, index=True)
    secret = Varchar(length=100)
    created_at = Timestamptz()
    retired_at = Timestamptz(null=True, default=None)


class InboundMessage(Table, tablename="inbound_messages"):
    """A verified inbound webhook id, kept (not cached) so a resend gets the same operation."""

    message_key = Varchar(length=300, primary_key=True, help_text="organization id + webhook-id")
    operation_id = Varchar(length=40)
    received_at = Timestamptz(index=True)
