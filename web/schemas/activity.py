"""The activity log and the events feed."""

from __future__ import annotations

from datetime import datetime

from msgspec import Struct


class ActorOut(Struct):
    type: str  # account, webhook, system
    id: str  # the account's id, the reseller webhook's webhook-id, or "system"
    key_id: str | None  # the API key an account used


class ActivityOut(Struct):
    id: str
    kind: str
    actor: ActorOut
    organization_id: str
    product_id: str | None
    client_id: str | None
    operation_id: str | None
    details: dict
    created_at: datetime


class ActivityPage(Struct, omit_defaults=True):
    items: list[ActivityOut]
    next_cursor: str | None  # pass it back as `after` for the next (older) page
    total: int | None = None  # every match of the filters, with `count=true`


class EventOut(Struct):
    id: str  # the `webhook-id` its deliveries carry
    type: str
    timestamp: str
    data: dict
    sandbox: bool = False  # a sandbox organization's event (its timestamp is the test clock's)


class EventFeed(Struct):
    items: list[EventOut]
    next_after: str | None  # the last event listed (else the `after` given): ask again with it
    has_more: bool  # more events are already there
