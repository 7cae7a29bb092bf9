"""renewals.execute: guarded by the current expiry, priced by lifecycle state, paid by the payer."""

from __future__ import annotations

from datetime import datetime

from rules import lifecycle, permissions, schedule
from rules.billing import payer_of
from rules.catalog import catalog_for, kind_of
from rules.errors import TargetMissing
from rules.ledger import EntryKind
from rules.lifecycle import rfc3339
from tables import event_payloads as payloads
from tables import events, ledger, operation_params, products
from tables.ledger import current_tier
from tables.operation_params import RenewalParams
from tables.operations import OperationRecord
from worker.charging import charge
from worker.execution import Done, recheck


async def renewal(op: OperationRecord, now: datetime) -> Done:
    params = operation_params.read(op, RenewalParams)
    product = await products.lock_full(op.product_id) if op.product_id else None
    if product is None or product["organization"] != op.organization_id:
        raise TargetMissing(f"product {op.product_id} is no longer in this organization")
    await recheck(op, permissions.PRODUCT_RENEW, params.payment_method)
    payer = payer_of(product["organization"], product["reseller"])
    kind = kind_of(catalog_for(await ledger.currency_of(payer)), product["kind"])
    guard = params.current_expires_at
    quote = lifecycle.renewal_quote(kind, params.years, await current_tier(payer), product["expires_at"], guard, now)
    await products.update(
        product["id"],
        now,
        expires_at=quote.expires_at,
        state=lifecycle.State.ACTIVE,
        **schedule.for_product(kind, quote.expires_at, product["autorenew"], now).as_columns(),
    )
    newly_flagged = await charge(
        payer,
        quote.total,
        params.payment_method,
        op.id,
        now,
        kind=EntryKind.RENEWAL,
        restore_fee=quote.restore_fee,
        product={"product_id": product["id"], "product_kind": kind.kind, "client_id": product["client"]},
    )
    result = {
        "product_id": product["id"],
        "price": quote.total.to_dict(),
        "restore_fee": quote.restore_fee.to_dict(),
        "previous_expires_at": rfc3339(product["expires_at"]),
        "expires_at": rfc3339(quote.expires_at),
    }
    await events.record(
        "product.renewed",
        payer,
        now,
        product_id=product["id"],
        operation_id=op.id,
        data=payloads.ProductRenewed(
            client_id=product["client"],
            product_id=product["id"],
            price=payloads.money(result["price"]),
            restore_fee=payloads.money(result["restore_fee"]),
            previous_expires_at=result["previous_expires_at"],
            expires_at=result["expires_at"],
        ),
    )
    return Done(result=result, product_id=product["id"], charged=[payer] if newly_flagged else [])
