"""transfers.execute: a reseller moves a product between itself and its clients."""

from __future__ import annotations

from datetime import datetime

from rules import permissions
from rules.errors import TargetMissing
from tables import clients, events, operation_params, organizations, products
from tables import event_payloads as payloads
from tables.operation_params import TransferParams
from tables.operations import OperationRecord
from worker.execution import Done, recheck


async def transfer(op: OperationRecord, now: datetime) -> Done:
    to_client = operation_params.read(op, TransferParams).to_client
    org_id = op.organization_id
    product = await products.lock(op.product_id) if op.product_id else None
    if product is None or product["organization"] != org_id:
        raise TargetMissing(f"product {op.product_id} is no longer in this organization")
    await recheck(op, permissions.PRODUCT_TRANSFER)
    org = await organizations.find(org_id)
    assert org is not None  # organizations are never deleted
    status = None
    if to_client:
        client = await clients.find(org_id, to_client)
        if client is None:
            raise TargetMissing(f"client {to_client} is not in this reseller's portfolio")
        status = client.status
    permissions.check_transfer(org.is_reseller, status)
    await products.update(product["id"], now, client=to_client, reseller=org_id if to_client else None)
    result = {"product_id": product["id"], "from_client": product["client"], "to_client": to_client}
    await events.record(
        "product.transferred",
        org_id,
        now,
        product_id=product["id"],
        operation_id=op.id,
        data=payloads.ProductTransferred(product_id=product["id"], from_client=product["client"], to_client=to_client),
    )
    return Done(result=result, product_id=product["id"])
