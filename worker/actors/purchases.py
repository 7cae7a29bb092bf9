"""purchases.execute: price with the payer's tier, charge, create the product."""

from __future__ import annotations

from datetime import datetime

from rules import lifecycle, permissions, schedule
from rules.catalog import catalog_for, kind_of
from rules.errors import NameTaken
from rules.ledger import EntryKind
from rules.lifecycle import rfc3339
from tables import clients, events, operation_params, organizations, products
from tables import event_payloads as payloads
from tables.ledger import current_tier
from tables.operation_params import PurchaseParams
from worker import batch_memo
from worker.charging import charge
from worker.execution import Done, recheck


async def purchase(op: dict, now: datetime) -> Done:
    params = operation_params.read(op, PurchaseParams)
    org_id = op["organization_id"]
    await recheck(op, permissions.PRODUCT_BUY, params.payment_method)
    org = await batch_memo.once(("organization", org_id), lambda: organizations.get(org_id))
    client_id = params.client_id
    if client_id:
        client = await clients.get(org_id, client_id)
        permissions.check_purchase_owner(org["is_reseller"], client_id, client and client["status"])
    kind = kind_of(catalog_for(org["currency"]), params.kind)
    quote = lifecycle.purchase_quote(
        kind,
        params.years,
        await batch_memo.once(("tier", org_id), lambda: current_tier(org_id)),
        now.replace(microsecond=0),
    )
    product_id = await products.insert(
        kind=kind.kind,
        name=params.name,
        organization_id=org_id,
        client_id=client_id,
        reseller_id=org_id if client_id else None,
        expires_at=quote.expires_at,
        now=now,
        schedule=schedule.for_product(kind, quote.expires_at, True, now).as_columns(),
        sandbox=org["sandbox"],
    )
    if product_id is None:
        raise NameTaken(f"{params.name} is already held by another product; choose another name")
    newly_flagged = await charge(
        org_id,
        quote.total,
        params.payment_method,
        op["id"],
        now,
        kind=EntryKind.PURCHASE,
        product={"product_id": product_id, "product_kind": kind.kind, "client_id": client_id},
    )
    result = {"product_id": product_id, "price": quote.total.to_dict(), "expires_at": rfc3339(quote.expires_at)}
    await events.record(
        "product.purchased",
        org_id,
        now,
        product_id=product_id,
        operation_id=op["id"],
        data=payloads.ProductPurchased(
            kind=kind.kind,
            name=params.name,
            client_id=client_id,
            product_id=product_id,
            price=payloads.money(result["price"]),
            expires_at=result["expires_at"],
        ),
    )
    return Done(result=result, product_id=product_id, charged=[org_id] if newly_flagged else [])
