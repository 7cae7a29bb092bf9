"""Outbound webhook endpoints, their deliveries, and manual retries."""

from __future__ import annotations

from typing import Annotated

import anyio
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from rules import permissions
from rules import webhooks as hooks
from rules.errors import InvalidWebhookUrl
from runtime.clock import clock
from tables import deliveries, webhooks
from tables.activity import Actor, record
from tables.engine import transaction
from web.access import Account, access
from web.errors import Conflict, NotFound
from web.schemas.common import cut
from web.schemas.webhooks import (
    AttemptOut,
    DeliveryOut,
    DeliveryPage,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    EndpointSecretOut,
    PingOut,
)
from worker.queue import delivery_message
from worker.webhooks.addresses import NotPublic, Resolver, Unresolvable, checked_addresses


def endpoint_out(row: webhooks.EndpointRecord, secret: str | None = None) -> EndpointOut:
    return EndpointOut(
        id=row.id,
        url=row.url,
        event_types=row.event_types,
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        failing_since=row.failing_since,
        created_at=row.created_at,
        secret=secret,
        description=row.description,
    )


async def endpoint_of(org_id: str, endpoint_id: str) -> webhooks.EndpointRecord:
    """The organization's endpoint, or 404 (another organization's endpoint is not found either)."""
    hook = await webhooks.endpoint(org_id, endpoint_id)
    if hook is None:
        raise NotFound("webhook endpoint", endpoint_id)
    return hook


async def enabled_endpoint_of(org_id: str, endpoint_id: str, *, to: str, was: bool = False) -> webhooks.EndpointRecord:
    """The organization's endpoint if it is enabled, or 404; disabled: 409 endpoint_disabled,
    saying why and that enabling it lets it do what was asked (`to`)."""
    hook = await endpoint_of(org_id, endpoint_id)
    if not hook.enabled:
        raise Conflict(
            "endpoint_disabled",
            f"this endpoint {'was' if was else 'is'} disabled ({hook.disabled_reason}); "
            f"enable it (PATCH enabled=true) {to}",
        )
    return hook


async def refuse_private(url: str, allow_private: bool, resolver: Resolver) -> None:
    """Refuses a URL whose host does not resolve, or resolves to any address outside the public
    internet (the same check each delivery makes again, on the address it connects to)."""
    host = hooks.check_url(url)
    if allow_private:
        return
    try:
        await checked_addresses(host, resolver, allow_private)
    except Unresolvable as exc:
        raise InvalidWebhookUrl(f"{exc}; check the URL") from None
    except NotPublic as exc:
        raise InvalidWebhookUrl(f"{exc}; webhook endpoints must be reachable on the public internet") from None


class WebhookEndpointController(Controller):
    path = "/v1/organizations/{org_id:str}/webhook-endpoints"
    tags = ["webhooks"]

    @post("/", status_code=201)
    async def create_endpoint(
        self, request: Request, account: Account, org_id: FromPath[str], data: JSONBody[EndpointIn]
    ) -> EndpointOut:
        """Subscribes a URL to events (all when `event_types` is empty); the secret is shown once."""
        await access(account, org_id, permissions.WEBHOOK_MANAGE)
        types = hooks.validate_event_types(data.event_types)
        await refuse_private(
            data.url, request.app.state.settings.allow_private_webhook_urls, request.app.state.resolver
        )
        secret = webhooks.new_secret()
        async with transaction():
            row = await webhooks.create_endpoint(
                org_id, data.url, types, secret, clock.now(), description=data.description.strip()
            )
            await record(
                org_id,
                "webhook_endpoint.created",
                Actor.account(account),
                clock.now(),
                endpoint_id=row.id,
                url=data.url,
            )
        return endpoint_out(row, secret)

    @get("/")
    async def list_endpoints(self, account: Account, org_id: FromPath[str]) -> list[EndpointOut]:
        await access(account, org_id, permissions.WEBHOOK_MANAGE)
        return [endpoint_out(row) for row in await webhooks.endpoints_of(org_id)]

    @delete("/{endpoint_id:str}", status_code=204)
    async def delete_endpoint(self, account: Account, org_id: FromPath[str], endpoint_id: FromPath[str]) -> None:
        await access(account, org_id, permissions.WEBHOOK_MANAGE)
        async with transaction():
            await endpoint_of(org_id, endpoint_id)
            await webhooks.delete_endpoint(endpoint_id, clock.now())
            await record(
                org_id, "webhook_endpoint.deleted", Actor.account(account), clock.now(), endpoint_id=endpoint_id
            )

    @patch("/{endpoint_id:str}")
    async def update_endpoint(
        self,
        request: Request,
        account: Account,
        org_id: FromPath[str],
        endpoint_id: FromPath[str],
        data: JSONBody[EndpointPatch],
    ) -> EndpointOut:
        """Changes the URL (checked as at creation), the subscribed event types, the description,
        or `enabled`: disabling cancels pending deliveries, enabling resumes those cancelled."""
        await access(account, org_id, permissions.WEBHOOK_MANAGE)
        await endpoint_of(org_id, endpoint_id)
        changes: dict = {}
        if data.event_types is not None:
            changes["event_types"] = sorted(hooks.validate_event_types(data.event_types))
        if data.url is not None:
            await refuse_private(
                data.url, request.app.state.settings.allow_private_webhook_urls, request.app.state.resolver
            )
            changes["url"] = data.url
        if data.description is not None:
            changes["description"] = data.description.strip()
        resumed: list[str] = []
        now = clock.now()
        async with transaction():
            await endpoint_of(org_id, endpoint_id)  # deleted meanwhile
            await webhooks.update_endpoint(endpoint_id, changes)
            if data.enabled is True:
                resumed = await webhooks.enable_endpoint(endpoint_id, now)
            elif data.enabled is False:
                await webhooks.disable_endpoint(endpoint_id, webhooks.DISABLED_ON_REQUEST, now)
            await record(
                org_id,
                "webhook_endpoint.updated",
                Actor.account(account),
                now,
                endpoint_id=endpoint_id,
                fields=sorted([*changes, *(["enabled"] if data.enabled is not None else [])]),
                enabled=data.enabled,
            )
        for delivery_id in resumed:
            if not await anyio.to_thread.run_sync(request.app.state.sender.send, delivery_message(delivery_id)):
                break  # broker down: the leases run out and the scheduler sends them
        return endpoint_out(await webhooks.endpoint(org_id, endpoint_id))

    @post("/{endpoint_id:str}/secret", status_code=201)
    async def rotate_secret(
        self, account: Account, org_id: FromPath[str], endpoint_id: FromPath[str]
    ) -> EndpointSecretOut:
        """Makes a new signing secret, shown once. For 24 hours deliveries carry two signatures
        (new and previous secret, in the one `webhook-signature` header), so receivers can switch."""
        await access(account, org_id, permissions.WEBHOOK_MANAGE)
        secret = webhooks.new_secret()
        async with transaction():
            await endpoint_of(org_id, endpoint_id)
            until = await webhooks.rotate_secret(endpoint_id, secret, clock.now())
            await record(
                org_id, "webhook_endpoint.secret_rotated", Actor.account(account), clock.now(), endpoint_id=endpoint_id
            )
        return EndpointSecretOut(secret=secret, previous_valid_until=until)

    @post("/{endpoint_id:str}/test", status_code=202)
    async def ping(
        self, request: Request, account: Account, org_id: FromPath[str], endpoint_id: FromPath[str]
    ) -> PingOut:
        """Sends a signed `ping` event to this endpoint only (whatever it subscribes to); the
        delivery shows in its delivery log."""
        await access(account, org_id, permissions.WEBHOOK_MANAGE)
        async with transaction():
            await enabled_endpoint_of(org_id, endpoint_id, to="to test it")
            event_id, delivery_id = await deliveries.add_ping(org_id, endpoint_id, clock.now())
        await anyio.to_thread.run_sync(request.app.state.sender.send, delivery_message(delivery_id))
        return PingOut(event_id=event_id, delivery_id=delivery_id, status=webhooks.DeliveryStatus.PENDING)

    @get("/{endpoint_id:str}/deliveries")
    async def list_deliveries(
        self,
        account: Account,
        org_id: FromPath[str],
        endpoint_id: FromPath[str],
        after: FromQuery[str | None] = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    ) -> DeliveryPage:
        """Deliveries, newest first, each with every attempt (status code, duration, answer excerpt)."""
        await access(account, org_id, permissions.WEBHOOK_MANAGE)
        await endpoint_of(org_id, endpoint_id)
        rows, cursor = cut(await deliveries.deliveries_page(endpoint_id, after, limit + 1), limit)
        attempts = await deliveries.attempts_of([r.id for r in rows])
        items = [
            DeliveryOut(
                id=r.id,
                event_id=r.event_id,
                status=r.status,
                attempts=r.attempts,
                next_attempt_at=r.next_attempt_at if r.status == webhooks.DeliveryStatus.PENDING else None,
                created_at=r.created_at,
                attempt_log=[
                    AttemptOut(
                        attempted_at=a.attempted_at,
                        status_code=a.status_code,
                        duration_ms=a.duration_ms,
                        response_excerpt=a.response_excerpt,
                        error=a.error,
                    )
                    for a in attempts[r.id]
                ],
            )
            for r in rows
        ]
        return DeliveryPage(items=items, next_cursor=cursor)

    @post("/{endpoint_id:str}/deliveries/{delivery_id:str}/retry", status_code=202)
    async def retry_delivery(
        self,
        request: Request,
        account: Account,
        org_id: FromPath[str],
        endpoint_id: FromPath[str],
        delivery_id: FromPath[str],
    ) -> dict:
        """Sends the delivery again now (one attempt; on failure it follows the retry schedule)."""
        await access(account, org_id, permissions.WEBHOOK_MANAGE)
        await enabled_endpoint_of(org_id, endpoint_id, to="to receive events again", was=True)
        async with transaction():
            if not await deliveries.reset_for_retry(endpoint_id, delivery_id, clock.now()):
                raise NotFound("delivery", delivery_id)  # unknown here, or an attempt is in flight
        await anyio.to_thread.run_sync(request.app.state.sender.send, delivery_message(delivery_id))
        return {"id": delivery_id, "status": webhooks.DeliveryStatus.PENDING}
