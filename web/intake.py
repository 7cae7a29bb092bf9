"""Checks and parameters of each operation, shared by the API and inbound webhooks.

Each function takes plain values (the organization row, the permissions the caller
holds there, the parsed request) and answers the operation's params, or raises a
named error. The API passes the member's permissions; an inbound webhook verified
with the reseller's secret acts as the reseller itself (every permission).
"""

from __future__ import annotations

from rules import lifecycle, names, permissions
from rules.catalog import DEFAULT_CATALOG, kind_of
from rules.errors import NameTaken
from tables import clients, products
from web.errors import NotFound
from web.schemas import PurchaseIn, ReleaseIn, RenewalIn


async def client_in(org_id: str, client_id: str) -> dict:
    client = await clients.get(org_id, client_id)
    if client is None:
        raise NotFound("client", client_id)
    return client


async def purchase_params(org: dict, granted: frozenset[str], data: PurchaseIn) -> dict:
    permissions.require(granted, permissions.PRODUCT_BUY)
    permissions.require_payment_method(granted, data.payment_method)
    kind = kind_of(DEFAULT_CATALOG, data.kind)
    lifecycle.check_term(kind, data.years)
    name = names.normalize(data.kind, data.name)
    status = None
    if data.client and org["is_reseller"]:
        status = (await client_in(org["id"], data.client))["status"]
    permissions.check_purchase_owner(org["is_reseller"], data.client, status)
    if await products.name_held(data.kind, name):
        raise NameTaken(f"{name} is already held by another product; choose another name")
    return {"kind": data.kind, "name": name, "years": data.years,
            "payment_method": data.payment_method, "client_id": data.client}


async def renewal_params(product: dict, granted: frozenset[str], data: RenewalIn) -> dict:
    permissions.require(granted, permissions.PRODUCT_RENEW)
    permissions.require_payment_method(granted, data.payment_method)
    lifecycle.check_term(kind_of(DEFAULT_CATALOG, product["kind"]), data.years)
    return {"years": data.years, "current_expires_at": data.current_expires_at.isoformat(),
            "payment_method": data.payment_method}


async def release_params(org: dict, granted: frozenset[str], client_id: str, data: ReleaseIn,
                         claim_days: int) -> dict:
    permissions.require(granted, permissions.CLIENT_MANAGE)
    client = await client_in(org["id"], client_id)
    permissions.check_purchase_owner(org["is_reseller"], client_id, client["status"])
    return {"client_id": client_id, "owner_email": data.owner_email, "claim_days": claim_days}
