"""Webhooks in, up to the operation each becomes: their bodies (`{"type": ..., "data": {...}}`),
the Standard Webhooks signature check against the reseller's inbound secrets, and the checks of
the matching API request (`web.intake`), acting as the reseller itself. The route that receives
them is web/routes/inbound.py."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta, Struct
from standardwebhooks import Webhook

from rules import permissions
from rules.errors import ClientNotActive
from rules.operations import OperationKind
from runtime.clock import clock
from runtime.settings import Settings
from tables import clients, inbound, organizations, products, webhooks
from tables.operation_params import ClientUpsertParams
from tables.organizations import OrganizationRecord
from web import intake
from web.edge import refuse_control_characters
from web.errors import ApiError, Invalid, NotFound
from web.schemas.common import Email, Ident, Name
from web.schemas.products import PurchaseIn, ReleaseIn, RenewalIn
from web.strict_body import explain

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
MAX_WEBHOOK_ID_LENGTH = 200


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
