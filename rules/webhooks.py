"""Outbound webhooks as data: event types, the retry schedule, when to give up, which URLs."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from rules.errors import InvalidWebhookUrl, UnknownEventType
from rules.lifecycle import State, rfc3339

EVENT_TYPES = frozenset(
    {
        "operation.succeeded",
        "operation.failed",
        "product.purchased",
        "product.renewed",
        "product.expiring",
        "product.expired",
        "product.transferred",
        "client.released",
        "tier.changed",
        "endpoint.disabled",
        # Beyond DESIGN's list: grace -> redemption -> pending_delete -> deleted (expiry itself is product.expired).
        "product.state_changed",
        # A released client's organization was claimed by its owner (told to the reseller).
        "organization.claimed",
        # The prepaid balance went below the organization's low_balance_threshold or its autorenew
        # forecast (once per dip: not again until it has been topped up above).
        "billing.low_balance",
    }
)

# Sent to one endpoint on request (POST .../test), whatever it subscribes to: not subscribable.
PING = "ping"

# Delay before each attempt: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; then failed.
RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_DELAYS)
JITTER_PERMILLE = 100  # delays move by up to ±10 % so retries of many deliveries spread out
DISABLE_AFTER = timedelta(days=5)
MAX_RETRY_AFTER = timedelta(hours=10)


def state_change_event(state: State) -> str:
    """The event a product's move into `state` emits: entering grace is the expiry a reseller
    acts on (product.expired); every other move is a product.state_changed."""
    return "product.expired" if state is State.GRACE else "product.state_changed"


def validate_event_types(names: Iterable[str]) -> frozenset[str]:
    """The subscribed types; empty means every type."""
    wanted = frozenset(names)
    unknown = sorted(wanted - EVENT_TYPES)
    if unknown:
        raise UnknownEventType(f"unknown event types {unknown}; valid types are: {', '.join(sorted(EVENT_TYPES))}")
    return wanted


def matches(subscribed: frozenset[str], event_type: str) -> bool:
    return not subscribed or event_type in subscribed


def outcome(status_code: int | None) -> str:
    """'delivered' for 2xx, 'gone' for 410 (disable the endpoint at once), else 'retry'."""
    if status_code is not None and 200 <= status_code < 300:
        return "delivered"
    if status_code == 410:
        return "gone"
    return "retry"


def next_attempt_at(
    attempts_made: int, now: datetime, jitter: int, retry_after: timedelta | None = None
) -> datetime | None:
    """When to try again after `attempts_made` attempts, or None when the schedule is spent.

    `jitter` is per mille in [-100, 100] (the caller draws it); `Retry-After` can only
    push later, up to 10 h.
    """
    if attempts_made >= MAX_ATTEMPTS:
        return None
    jitter = max(-JITTER_PERMILLE, min(JITTER_PERMILLE, jitter))
    delay = RETRY_DELAYS[attempts_made] * (1000 + jitter) / 1000
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return now + delay


def should_disable(failing_since: datetime | None, now: datetime) -> bool:
    """An endpoint failing without a single success for 5 days is disabled."""
    return failing_since is not None and now - failing_since >= DISABLE_AFTER


def check_url(url: str) -> str:
    """The host of an acceptable endpoint URL: http(s), a host, no credentials."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidWebhookUrl(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhookUrl("webhook URLs must start with http:// or https://")
    if not parts.hostname:
        raise InvalidWebhookUrl("the webhook URL has no host")
    if parts.username or parts.password:
        raise InvalidWebhookUrl("put credentials in the path or a header, not in the URL")
    return parts.hostname


# IPv6 ranges that carry an IPv4 address or reach one through a gateway (6to4, Teredo, NAT64):
# a public-looking IPv6 address there can lead to a loopback or private IPv4 host.
TUNNELLED_IPV6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "2002::/16",
        "2001::/32",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "::/96",  # IPv4-compatible (deprecated), with :: and ::1
    )
)


def is_public(address: str) -> bool:
    """May a webhook connect to this (resolved) address? Only globally routable unicast ones.

    Refused: everything `ipaddress` does not call global (loopback, private, shared
    100.64.0.0/10, link-local, documentation, reserved...), multicast, IPv6 site-local,
    6to4, Teredo, NAT64 and IPv4-compatible; an IPv4-mapped address is judged by the IPv4
    address it maps.
    """
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public(str(ip.ipv4_mapped))
        if ip.is_site_local or any(ip in network for network in TUNNELLED_IPV6):
            return False
    return ip.is_global and not (
        ip.is_multicast or ip.is_private or ip.is_reserved or ip.is_loopback or ip.is_link_local or ip.is_unspecified
    )


def body_of(event: dict[str, Any], sandbox: bool = False) -> dict[str, Any]:
    """What a webhook carries for `event` (its id travels as the `webhook-id` header); the
    events feed (GET /v1/organizations/{org}/events) lists the same. `timestamp` is when it
    happened (a sandbox's: its test clock's time), and a sandbox's events say `"sandbox": true`."""
    body: dict[str, Any] = {
        "type": event["type"],
        "timestamp": rfc3339(event["created_at"]),
        # The event's own organization_id (client.released, organization.claimed: the new
        # organization) wins over the organization told.
        "data": {
            "organization_id": event["organization_id"],
            "product_id": event["product_id"],
            "operation_id": event["operation_id"],
            **event["data"],
        },
    }
    if sandbox:
        body["sandbox"] = True
    return body
