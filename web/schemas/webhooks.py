"""Webhooks: the endpoints events go out to and their deliveries, and the secret for webhooks in."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta, Struct

from rules.urls import check_well_formed
from rules.webhooks import EVENT_TYPES
from web.schemas.common import TEXT_PATTERN
from web.schemas.operations import OperationOut

# The event catalog, as the OpenAPI schema shows it on every field that subscribes to events.
EventTypes = Annotated[
    list[str],
    Meta(description="Event types to receive; empty: all of them. The catalog: " + ", ".join(sorted(EVENT_TYPES))),
]

# Checked by rules.urls (422 `invalid_url`, saying what is wrong), not by a pattern here.
Url = Annotated[
    str,
    Meta(
        min_length=8,
        max_length=2000,
        description="an http(s) URL reachable on the public internet, without spaces or control characters",
    ),
]


class EndpointIn(Struct, forbid_unknown_fields=True):
    url: Url
    event_types: EventTypes = msgspec.field(default_factory=list)
    description: Annotated[str, Meta(max_length=500, pattern=TEXT_PATTERN)] = ""

    def __post_init__(self) -> None:
        check_well_formed(self.url)  # 422 invalid_url, raised through the decoder


class EndpointOut(Struct):
    id: str
    url: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    secret: str | None = None  # only in the answer that creates the endpoint
    description: str = ""


class AttemptOut(Struct):
    attempted_at: datetime
    status_code: int | None
    duration_ms: int
    response_excerpt: str
    error: str | None


class DeliveryOut(Struct):
    id: str
    event_id: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    attempt_log: list[AttemptOut]


class DeliveryPage(Struct):
    items: list[DeliveryOut]
    next_cursor: str | None  # pass it back as `after` for the next page


Description = Annotated[str, Meta(max_length=500, pattern=TEXT_PATTERN)]


class EndpointPatch(Struct, forbid_unknown_fields=True):
    """The fields to change; those omitted (or null) stay as they are."""

    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    enabled: bool | None = None

    def __post_init__(self) -> None:
        if self.url is not None:
            check_well_formed(self.url)  # 422 invalid_url, raised through the decoder


class EndpointSecretOut(Struct):
    secret: str  # shown once
    previous_valid_until: datetime  # the previous secret signs deliveries too until then


class PingOut(Struct):
    event_id: str
    delivery_id: str
    status: str


class InboundSecretOut(Struct):
    secret: str
    previous_valid_until: datetime | None


class InboundAccepted(Struct):
    operation: OperationOut
