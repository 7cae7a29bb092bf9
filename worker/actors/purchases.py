"""purchases.execute: price with the payer's tier, charge, create the product.

`plan` makes every check a purchase needs and prices it, writing nothing; `purchase` (an
operation run on its own, or in a savepoint of a batch) then writes it row by row, and a batch
of purchases on PostgreSQL writes all its plans set-wise (`worker.purchase_batch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rules import lifecycle, permissions, schedule
from rules.catalog import ProductKind, catalog_for, kind_of
from rules.errors import NameTaken
from rules.ledger import EntryKind
from rules.lifecycle import Quote, rfc3339
from tables import clients, events, operation_params, organizations, products
from tables import event_payloads as payloads
from tables.ledger import current_tier
from tables.operation_params import PurchaseParams
from tables.operations import OperationRecord
from tables.organizations import OrganizationRecord
from worker import batch_memo
from worker.charging import charge
from worker.execution import Done, recheck


@dataclass(frozen=True)
class Plan:
    """A purchase checked and priced, nothing written yet."""

    params: PurchaseParams
    org: OrganizationRecord
    kind: ProductKind
    quote: Quote
    schedule: dict

    @property
    def product(self) -> dict:
        return {"product_kind": self.kind.kind, "client_id": self.params.client_id}

    def result(self, product_id: str) -> dict:
        return {
            "product_id": product_id,
            "price": self.quote.total.to_dict(),
            "expires_at": rfc3339(self.quote.expires_at),
        }

    def event(self, product_id: str) -> payloads.ProductPurchased:
        return payloads.ProductPurchased(
            kind=self.kind.kind,
            name=self.params.name,
            client_id=self.params.client_id,
            product_id=product_id,
            price=payloads.money(self.quote.total.to_dict()),
            expires_at=rfc3339(self.quote.expires_at),
        )


async def plan(op: OperationRecord, now: datetime) -> Plan:
    """The permission, owner and catalog checks and the price at the payer's tier (RuleViolation)."""
    params = operation_params.read(op, PurchaseParams)
    org_id = op.organization_id
    await recheck(op, permissions.PRODUCT_BUY, params.payment_method)
    org = await batch_memo.once(("organization", org_id), lambda: organizations.find(org_id))
    if org is None:  # organizations are never deleted: unexpected, retried as any such failure
        raise RuntimeError(f"organization {org_id} does not exist")
    if params.client_id:
        client = await clients.find(org_id, params.client_id)
        permissions.check_purchase_owner(org.is_reseller, params.client_id, client and client.status)
    kind = kind_of(catalog_for(org.currency), params.kind)
    quote = lifecycle.purchase_quote(
        kind,
        params.years,
        await batch_memo.once(("tier", org_id), lambda: current_tier(org_id)),
        now.replace(microsecond=0),
    )
    return Plan(params, org, kind, quote, schedule.for_product(kind, quote.expires_at, True, now).as_columns())


async def purchase(op: OperationRecord, now: datetime) -> Done:
    planned = await plan(op, now)
    params, org_id = planned.params, op.organization_id
    product_id = await products.insert(
        kind=planned.kind.kind,
        name=params.name,
        organization_id=org_id,
        client_id=params.client_id,
        reseller_id=org_id if params.client_id else None,
        expires_at=planned.quote.expires_at,
        now=now,
        schedule=planned.schedule,
        sandbox=planned.org.sandbox,
    )
    if product_id is None:
        raise NameTaken(f"{params.name} is already held by another product; choose another name")
    newly_flagged = await charge(
        org_id,
        planned.quote.total,
        params.payment_method,
        op.id,
        now,
        kind=EntryKind.PURCHASE,
        product={**planned.product, "product_id": product_id},
    )
    await events.record(
        "product.purchased",
        org_id,
        now,
        product_id=product_id,
        operation_id=op.id,
        data=planned.event(product_id),
    )
    return Done(result=planned.result(product_id), product_id=product_id, charged=[org_id] if newly_flagged else [])
