"""Webhooks in: a reseller's back office (or white-label site) posts signed requests.

Each verified webhook becomes an operation through the same checks as the API
(`web.intake`) and the same outbox (`web.accept`), acting as the reseller itself.
Here: the routes that rotate and revoke the inbound secret, and the one that receives
webhooks; their bodies, signatures and checks are in web/inbound_webhooks.py.
"""

from __future__ import annotations

import structlog
from litestar import Controller, Request, Response, delete, post
from litestar.params import FromPath

from rules import permissions
from rules.errors import RuleViolation
from runtime.clock import clock
from tables import activity, inbound, operations, organizations
from tables.activity import Actor
from tables.engine import transaction
from web import idempotency, intake
from web.accept import NameHeld, accept_once, operation_out
from web.access import Account
from web.errors import NotFound
from web.inbound_webhooks import operation_for, parse, verified_webhook_id
from web.routes.clients import reseller_access
from web.schemas.operations import OperationOut
from web.schemas.webhooks import InboundAccepted, InboundSecretOut
from web.strict_body import require_json

log = structlog.get_logger("tenure.inbound")

MAX_BODY_BYTES = 1024 * 1024


class InboundController(Controller):
    tags = ["webhooks in"]

    @post("/v1/resellers/{org_id:str}/inbound-secret", status_code=201)
    async def rotate_secret(self, account: Account, org_id: FromPath[str]) -> InboundSecretOut:
        """Makes a new secret for signing webhooks to `/v1/inbound/{org}` (shown once).

        The previous secret keeps verifying until `previous_valid_until` (24 h), so
        senders can switch over; `DELETE .../inbound-secret/previous` ends that at once.
        Needs `webhook:manage` on a reseller organization.
        """
        await reseller_access(account, org_id, permissions.WEBHOOK_MANAGE)
        now = clock.now()
        async with transaction():
            await organizations.lock(org_id)
            secret, previous_valid_until = await inbound.rotate(org_id, now)
            await activity.record(org_id, "inbound_secret.rotated", Actor.account(account), now)
        return InboundSecretOut(secret=secret, previous_valid_until=previous_valid_until)

    @delete("/v1/resellers/{org_id:str}/inbound-secret/previous", status_code=204)
    async def revoke_previous_secret(self, account: Account, org_id: FromPath[str]) -> None:
        """Ends the previous secret's 24 h now, e.g. when it leaked: webhooks signed with it
        get 401 from then on; the current secret keeps working.

        Needs `webhook:manage` on a reseller organization. 204 whether or not there was a
        previous secret (there is nothing left to end).
        """
        await reseller_access(account, org_id, permissions.WEBHOOK_MANAGE)
        async with transaction():
            await organizations.lock(org_id)
            revoked = await inbound.revoke_retired(org_id)
            await activity.record(org_id, "inbound_secret.previous_revoked", Actor.account(account), clock.now())
        log.info("inbound_secret_previous_revoked", organization_id=org_id, revoked=revoked)

    @post("/v1/inbound/{org_id:str}", status_code=202, security=[{}], request_max_body_size=MAX_BODY_BYTES)
    async def receive(self, request: Request, org_id: FromPath[str]) -> Response[InboundAccepted]:
        """A signed webhook from the reseller's back office; it becomes an operation.

        Signed per Standard Webhooks with the secret from `POST
        /v1/resellers/{org}/inbound-secret` (or the previous one, for 24 h after a
        rotation): headers `webhook-id`, `webhook-timestamp` (within 5 minutes) and
        `webhook-signature` (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body`).
        Anything unsigned, wrongly signed or stale gets 401 `invalid_signature`.

        Body `{"type": ..., "data": {...}}`:
        - `purchase.requested` {kind, name, years, payment_method = "prepaid",
          client_id? | client_ref?}: buys for the reseller, or for the client given by
          id or by its `external_ref` (`client_ref`)
        - `renewal.requested` {product_id, years, current_expires_at,
          payment_method = "prepaid"}: the product must be the reseller's or one of its
          clients'
        - `release.requested` {client_id? | client_ref?, owner_email}
        - `client.upserted` {external_ref, name, email}: creates or updates the client
          with that `external_ref`

        202 {operation} the first time; the same `webhook-id` again answers 200 with the
        same operation (kept at least 7 days), or 422 `idempotency_key_reused` if its
        body differs. A body sent without `Content-Type: application/json` is 415
        `unsupported_media_type`; a string with a control character (such as NUL) is 400
        `invalid_request` naming the field; another unknown type or malformed body is 422
        `invalid_webhook`; the checks of the matching API request answer their own codes.
        """
        body = await request.body()
        org, webhook_id = await verified_webhook_id(org_id, body, request.headers)
        require_json(request)
        webhook = parse(body)
        wanted = idempotency.request_hash(request, webhook)

        earlier = await inbound.seen(org_id, webhook_id)
        if earlier is not None:
            op_id, recorded = earlier
            op = await _same_operation(op_id, wanted)
            if not recorded:  # a crash came between the operation and its message row
                async with transaction():
                    await inbound.remember(org_id, webhook_id, op.id, clock.now())
            return Response(InboundAccepted(operation=op), status_code=200)

        try:
            todo = await operation_for(org, webhook, request.app.state.settings)
        except RuleViolation:
            # A twin posted at once may have been accepted and run meanwhile (a renewal's guard
            # then no longer holds): answer its operation, as a replay would.
            if (twin := await operations.by_idem_key(inbound.idem_key(org_id, webhook_id))) is not None:
                return Response(InboundAccepted(operation=await _same_operation(twin.id, wanted)), status_code=200)
            raise
        try:
            op, made = await accept_once(
                request,
                kind=todo["kind"],
                org_id=org_id,
                account_id=None,
                data=webhook,
                params=todo["params"],
                product_id=todo.get("product_id"),
                idem_key=inbound.idem_key(org_id, webhook_id),
                actor=Actor.webhook(webhook_id),
                unless_name_held=todo.get("name_key"),
            )
        except NameHeld:
            raise intake.name_taken(todo["params"].name) from None
        async with transaction():
            await inbound.remember(org_id, webhook_id, op.id, clock.now())
        # Racing posts of one id all get the one operation; the one that made it gets 202 (a twin
        # may record the id before it does, seeing the operation between its commit and its row).
        return Response(InboundAccepted(operation=op), status_code=202 if made else 200)


async def _same_operation(op_id: str, wanted_hash: str) -> OperationOut:
    row = await operations.get(op_id)
    if row is None:  # not expected: operations are never deleted
        raise NotFound("operation", op_id)
    idempotency.check_same_request(row.request_hash, wanted_hash)
    return operation_out(row)
