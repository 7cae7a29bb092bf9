"""What an organization can account for: its activity record, and the feed of its webhook events."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, Request, get
from litestar.params import FromPath, QueryParameter

from rules import permissions
from rules.webhooks import PING, body_of
from runtime import ids
from tables import activity, events, keyset
from web import listing
from web.access import Account, access
from web.csv_stream import csv_export
from web.errors import BadFilter
from web.schemas.activity import ActivityOut, ActivityPage, ActorOut, EventFeed, EventOut

ACTIVITY_CSV = [
    "id",
    "created_at",
    "kind",
    "actor_type",
    "actor_id",
    "key_id",
    "product_id",
    "client_id",
    "operation_id",
    "details",
]
_KIND = re.compile(r"^[a-z_]{1,30}\.[a-z_]{1,30}$")
_ID = re.compile(r"^[a-z]{2,8}_[0-9a-z]{1,40}$")
_WEBHOOK_ID = re.compile(r"^[\x21-\x7e]{1,200}$")  # what an inbound webhook-id may be


def activity_out(row: dict) -> ActivityOut:
    return ActivityOut(
        id=row["id"],
        kind=row["kind"],
        actor=ActorOut(type=row["actor_type"], id=row["actor_id"], key_id=row["key_id"]),
        organization_id=row["organization_id"],
        product_id=row["product_id"],
        client_id=row["client_id"],
        operation_id=row["operation_id"],
        details=row["details"] or {},
        created_at=row["created_at"],
    )


def _csv_cells(rows: list[dict]):
    for row in rows:
        yield [*(row[c] for c in ACTIVITY_CSV[:-1]), msgspec.json.encode(row["details"] or {}).decode()]


def actor_filter(actor: str | None) -> str | None:
    """`system`, `webhook` (any reseller webhook), `webhook:<webhook-id>` or an account id."""
    if actor is None or actor in (activity.SYSTEM, "webhook"):
        return actor
    if actor.startswith("webhook:") and _WEBHOOK_ID.match(actor.removeprefix("webhook:")):
        return actor.removeprefix("webhook:")
    if actor.startswith("acc_") and _ID.match(actor):
        return actor
    raise BadFilter(
        "invalid_actor",
        "actor must be an account id (acc_...), `system` (tenure's sweeps and "
        "autorenewals), `webhook` (any reseller webhook) or `webhook:<webhook-id>`",
    )


def id_filter(name: str, value: str | None, example: str) -> str | None:
    if value is not None and not _ID.match(value):
        raise BadFilter(f"invalid_{name}", f"{name} must be an id such as {example}; leave it out for all")
    return value


class ActivityController(Controller):
    path = "/v1/organizations/{org_id:str}"
    tags = ["activity"]

    @get("/activity")
    async def list_activity(
        self,
        request: Request,
        account: Account,
        org_id: FromPath[str],
        actor: Annotated[
            str | None,
            QueryParameter(max_length=210, description="an account id, `system`, `webhook` or `webhook:<webhook-id>`"),
        ] = None,
        kind: Annotated[
            str | None,
            QueryParameter(max_length=61, description="what happened, e.g. team.created, operation.succeeded"),
        ] = None,
        product: Annotated[str | None, QueryParameter(max_length=50, description="a product id")] = None,
        client: Annotated[str | None, QueryParameter(max_length=50, description="a reseller client's id")] = None,
        since: Annotated[datetime | None, QueryParameter(description="RFC 3339; at or after")] = None,
        until: Annotated[datetime | None, QueryParameter(description="RFC 3339; before")] = None,
        count: Annotated[bool, QueryParameter(description="also report `total`, every match")] = False,
        after: Annotated[
            str | None, QueryParameter(max_length=2000, description="the previous page's next_cursor")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> ActivityPage:
        """Every change the organization saw, newest first: who made it (an account and its API key,
        a verified reseller webhook, or tenure itself), what, when, and the ids involved. A reseller
        sees its clients' products' activity too (`client=` narrows it to one client). Needs `org:view`.
        With `Accept: text/csv`, every matching row as CSV. A filter that cannot match is refused
        (400 `invalid_actor`, `invalid_kind`, `invalid_product`, `invalid_client`, `invalid_period`)."""
        await access(account, org_id, permissions.ORG_VIEW)
        if kind is not None and not _KIND.match(kind):
            raise BadFilter(
                "invalid_kind",
                "kind must be an activity kind such as team.created, member.added "
                "or operation.succeeded; leave it out for all",
            )
        wanted = activity.Filter(
            org_id,
            actor=actor_filter(actor),
            kind=kind,
            product_id=id_filter("product", product, "prd_..."),
            client_id=id_filter("client", client, "cli_..."),
            since=listing.aware("since", since),
            until=listing.aware("until", until),
        )
        if wanted.since and wanted.until and wanted.since >= wanted.until:
            raise BadFilter("invalid_period", "since must be before until")
        order, sort_name = listing.keyset_for(
            {"id": activity.Activity.id, "created_at": activity.Activity.created_at},
            None,
            None,
            after,
            default="created_at",
            default_order="desc",
        )
        if listing.wants_csv(request):
            return csv_export("activity.csv", ACTIVITY_CSV, keyset.batches(wanted.select, order), _csv_cells)
        rows, cursor = listing.cut(await keyset.page(wanted.select, order, limit + 1), limit, order, sort_name)
        total = await activity.count(wanted) if count else None
        return ActivityPage(items=[activity_out(r) for r in rows], next_cursor=cursor, total=total)

    @get("/events")
    async def event_feed(
        self,
        request: Request,
        account: Account,
        org_id: FromPath[str],
        after: Annotated[
            str | None,
            QueryParameter(max_length=60, description="the id of the last event you processed (a webhook-id)"),
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> EventFeed:
        """The events the organization's webhook endpoints receive, oldest first, with the ids
        (`webhook-id`) and bodies their deliveries carry: a back office that missed deliveries
        catches up from the last id it processed (`after`), then keeps asking with `next_after`.
        Events are kept as long as retention keeps them. The newest events (made in the last
        TENURE_EVENT_FEED_SETTLE_SECONDS, 2 s) wait for a later call: an event's id is made before its
        transaction commits, and one committing late behind a newer one must not fall behind
        your `after`. Needs `webhook:manage`."""
        found = await access(account, org_id, permissions.WEBHOOK_MANAGE)
        if after is not None and not (after.startswith("evt_") and _ID.match(after)):
            raise BadFilter(
                "invalid_after",
                "after must be an event id (evt_...), the webhook-id of the "
                "last event you processed; leave it out to start from the oldest",
            )
        settle = request.app.state.settings.event_feed_settle_seconds
        before = ids.floor("evt", time.time_ns() // 1_000_000 - int(settle * 1000)) if settle > 0 else None
        rows = await events.feed(org_id, after, limit + 1, before=before, hidden=(PING,))
        more = len(rows) > limit
        rows = rows[:limit]
        return EventFeed(
            items=[EventOut(id=row["id"], **body_of(row, found.org.sandbox)) for row in rows],
            next_after=rows[-1]["id"] if rows else after,
            has_more=more,
        )
