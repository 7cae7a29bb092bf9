"""Webhooks in: a reseller's back office (or white-label site) posts signed requests.

Each verified webhook becomes an operation through the same checks as the API
(`web.intake`) and the same outbox (`web.accept`), acting as the reseller itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated

import msgspec
import structlog
from litestar import Controller, Request, Response, delete, post
from litestar.params import FromPath
from msgspec import Meta, Struct
from standardwebhooks import Webhook

from rules import permissions
from rules.errors import ClientNotActive, RuleViolation
from rules.operations import OperationKind
from runtime.clock import clock
from runtime.settings import Settings
from tables import activity, clients, inbound, operations, organizations, products, webhooks
from tables.activity import Actor
from tables.engine import transaction
from tables.operation_params import ClientUpsertParams
from tables.organizations import OrganizationRecord
from web import idempotency, intake
from web.accept import NameHeld, accept_once, operation_out
from web.access import Account
from web.edge import refuse_control_characters
from web.errors import ApiError, Invalid, NotFound
from web.routes.clients import reseller_access
from web.schemas.common import Email, Ident, Name
from web.schemas.operations import OperationOut
from web.schemas.products import PurchaseIn, ReleaseIn, RenewalIn
from web.schemas.webhooks import InboundAccepted, InboundSecretOut
from web.strict_body import explain, require_json

log = structlog.get_logger("tenure.inbound")

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
MAX_WEBHOOK_ID_LENGTH = 200
MAX_BODY_BYTES = 1024 * 1024


class InvalidSignature(ApiError):
    """One answer for every refusal before the signature holds, so nothing is revealed."""

    status, code = 401, "invalid_signature"

    def __init__(self) -> None:
        super().__init__(
            "the webhook signature is missing, wrong or stale: sign the exact body with the "
            "organization's current inbound secret (Standard Webhooks: webhook-id, "
            "webhook-timestamp within 5 minutes, webhook-signature 'v1,<base64 HMAC-SHA256>')"
        )


def _invalid(message: str) -> Invalid:
    return Invalid("invalid_webhook", message)


# --- the webhook bodies: {"type": ..., "data": {...}} -----------------------------------------
# Numbers, kinds and payment methods are plain here: the intake rules judge them and
# answer their own codes (invalid_term, unknown_product_kind, ...), as for the API.
# Strings with control characters are refused first, as the API refuses them (400).


class PurchaseData(Struct, forbid_unknown_fields=True):
    kind: str
    name: Annotated[str, Meta(max_length=1012)]
    years: int
    payment_method: str = "prepaid"
    client_id: Ident | None = None
    client_ref: Ident | None = None


class RenewalData(Struct, forbid_unknown_fields=True):
    product_id: Ident
    years: int
    current_expires_at: datetime
    payment_method: str = "prepaid"


class ReleaseData(Struct, forbid_unknown_fields=True):
    owner_email: Email
    client_id: Ident | None = None
    client_ref: Ident | None = None


class ClientData(Struct, forbid_unknown_fields=True):
    external_ref: Ident
    name: Name
    email: Email


# Unknown top-level fields (such as the Standard Webhooks `timestamp`) are ignored.
class PurchaseRequested(Struct, tag="purchase.requested", tag_field="type"):
    data: PurchaseData


class RenewalRequested(Struct, tag="renewal.requested", tag_field="type"):
    data: RenewalData


class ReleaseRequested(Struct, tag="release.requested", tag_field="type"):
    data: ReleaseData


class ClientUpserted(Struct, tag="client.upserted", tag_field="type"):
    data: ClientData


WEBHOOK_TYPES: dict[str, type[Struct]] = {
    cls.__struct_config__.tag: cls for cls in (PurchaseRequested, RenewalRequested, ReleaseRequested, ClientUpserted)
}


class _Head(Struct):
    type: str


def parse(body: bytes) -> Struct:
    """The webhook as its Struct, or 422 `invalid_webhook` naming what is wrong."""
    shape = 'the body must be a JSON object {"type": "...", "data": {...}}'
    try:
        refuse_control_characters(msgspec.json.decode(body))
        head = msgspec.json.decode(body, type=_Head)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError) as exc:
        raise _invalid(f"{shape}: {exc}") from None
    cls = WEBHOOK_TYPES.get(head.type)
    if cls is None:
        raise _invalid(f"unknown webhook type {head.type[:80]!r}; valid types are: {', '.join(sorted(WEBHOOK_TYPES))}")
    try:
        return msgspec.json.decode(body, type=cls)
    except msgspec.ValidationError as exc:
        raise _invalid(f"invalid {head.type} webhook: {explain(exc)}") from None


# --- verification -----------------------------------------------------------------------------


async def verified_webhook_id(org_id: str, body: bytes, headers: Mapping[str, str]) -> tuple[OrganizationRecord, str]:
    """The reseller organization and the webhook id, once the signature holds; else 401."""
    org = await organizations.find(org_id)
    secrets = []
    if org is not None and org.is_reseller:
        secrets = await inbound.valid_secrets(org_id, clock.now())
    signed = {name: headers.get(name) for name in SIGNATURE_HEADERS}
    # With no secret, still spend an HMAC on a throwaway one: the answer time says nothing.
    candidates = secrets or [webhooks.new_secret()]
    ok = False
    for secret in candidates:
        try:
            Webhook(secret).verify(body, signed, json_parse=False)
        except Exception:  # missing/stale headers, malformed signatures, non UTF-8 bodies alike
            continue
        ok = True
        break
    if not ok or not secrets:
        raise InvalidSignature()
    webhook_id = signed["webhook-id"]
    if len(webhook_id) > MAX_WEBHOOK_ID_LENGTH or not webhook_id.isprintable():
        raise _invalid(f"webhook-id must be 1-{MAX_WEBHOOK_ID_LENGTH} printable characters")
    return org, webhook_id


# --- from a webhook to an operation -------------------------------------------------------------


async def client_named(org_id: str, client_id: str | None, client_ref: str | None) -> str | None:
    """The client's id from `client_id` or `client_ref` (its external_ref); None if neither."""
    if client_id and client_ref:
        raise _invalid("name the client with client_id or client_ref, not both")
    if client_ref:
        client = await clients.by_external_ref(org_id, client_ref)
        if client is None:
            raise NotFound("client with external_ref", client_ref)
        return client.id
    return client_id


async def client_upsert_params(
    org: OrganizationRecord, granted: frozenset[str], data: ClientData
) -> ClientUpsertParams:
    permissions.require(granted, permissions.CLIENT_MANAGE)
    existing = await clients.by_external_ref(org.id, data.external_ref)
    if existing is not None and existing.status != permissions.ACTIVE_CLIENT:
        raise ClientNotActive(
            f"client {existing.id} ({data.external_ref}) was released; use another external_ref for a new client"
        )
    return ClientUpsertParams(external_ref=data.external_ref, name=data.name.strip(), email=data.email)


async def operation_for(org: OrganizationRecord, webhook: Struct, settings: Settings) -> dict:
    """The operation's kind, params and product for a webhook, checked as the API checks them."""
    granted = permissions.ALL_PERMISSIONS  # a verified webhook is the reseller itself
    data = webhook.data
    if isinstance(webhook, PurchaseRequested):
        client_id = await client_named(org.id, data.client_id, data.client_ref)
        params = await intake.purchase_params(
            org,
            granted,
            PurchaseIn(
                kind=data.kind, name=data.name, years=data.years, payment_method=data.payment_method, client=client_id
            ),
        )
        return {"kind": OperationKind.PURCHASE, "params": params, "name_key": intake.purchase_name_key(org, params)}
    if isinstance(webhook, RenewalRequested):
        product = await products.get(data.product_id)
        if product is None or product.organization_id != org.id:
            raise NotFound("product", data.product_id)
        renewal = await intake.renewal_params(
            product,
            granted,
            RenewalIn(years=data.years, current_expires_at=data.current_expires_at, payment_method=data.payment_method),
        )
        return {"kind": OperationKind.RENEWAL, "params": renewal, "product_id": product.id}
    if isinstance(webhook, ReleaseRequested):
        client_id = await client_named(org.id, data.client_id, data.client_ref)
        if client_id is None:
            raise _invalid("name the client to release with client_id or client_ref")
        release = await intake.release_params(
            org, granted, client_id, ReleaseIn(owner_email=data.owner_email), settings.claim_days
        )
        return {"kind": OperationKind.RELEASE, "params": release}
    assert isinstance(webhook, ClientUpserted)
    return {"kind": OperationKind.CLIENT_UPSERT, "params": await client_upsert_params(org, granted, data)}


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
