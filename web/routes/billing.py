"""Prepaid top-ups, the billing summary and the public catalog."""

from __future__ import annotations

from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody

from rules import ledger as booking
from rules import permissions, pricing
from rules.catalog import DEFAULT_CATALOG
from rules.money import Money
from tables import ledger, operations
from tables.clock import clock
from tables.engine import transaction
from web import idempotency
from web.access import Account, access
from web.errors import Conflict
from web.schemas import BillingOut, FundsIn, FundsOut, MoneyIO


def money_io(amount: int, currency: str) -> MoneyIO:
    return MoneyIO(amount=amount, currency=currency)


class BillingController(Controller):
    path = "/v1/organizations/{org_id:str}"
    tags = ["billing"]

    @post("/funds", status_code=201)
    async def add_funds(self, request: Request, account: Account, org_id: FromPath[str],
                        data: JSONBody[FundsIn]) -> FundsOut:
        """Tops up the prepaid balance. Takes an Idempotency-Key: a replay returns the first answer."""
        found = await access(account, org_id, permissions.BILLING_MANAGE)
        amount = Money(data.amount.amount, data.amount.currency)
        entries = booking.topup(org_id, amount)
        if amount.currency != found.org["currency"]:
            raise Conflict("currency_mismatch",
                           f"this organization is billed in {found.org['currency']}; top up in that currency")
        now = clock.now()
        wanted = idempotency.request_hash(request, data)
        row = operations.new_row("topup", org_id, now, account_id=account["id"], status="succeeded",
                                 idem_key=idempotency.key_for(request, org_id), request_hash=wanted,
                                 params={"amount": amount.to_dict()}, finished_at=now)
        async with transaction():
            op, created = await operations.insert_or_get(row)
            if created:
                await ledger.post(op["id"], entries, now, operation_id=op["id"])
                balance, currency = await ledger.prepaid_balance(org_id)
                result = {"balance": {"amount": balance, "currency": currency}}
                await operations.Operation.update({operations.Operation.result: result}).where(
                    operations.Operation.id == op["id"])
        if not created:
            idempotency.check_same_request(op, wanted)
            op = await operations.get(op["id"])
            result = op["result"]
        return FundsOut(operation_id=op["id"], amount=money_io(**amount.to_dict()),
                        balance=money_io(**result["balance"]))

    @get("/billing")
    async def billing(self, account: Account, org_id: FromPath[str]) -> BillingOut:
        """Prepaid balance and the volume tier in force for this organization's prices."""
        await access(account, org_id, permissions.BILLING_VIEW)
        balance, currency = await ledger.prepaid_balance(org_id)
        state = await ledger.tier_state(org_id)
        volume = Money(state["volume_12m"], state["currency"])
        tier = pricing.tier_for(volume)
        upcoming = pricing.next_tier(volume)
        return BillingOut(
            balance=money_io(balance, currency),
            volume_12m=money_io(**volume.to_dict()),
            tier=tier.name,
            discount_percent=tier.discount_percent,
            next_tier_at=money_io(**upcoming.threshold.to_dict()) if upcoming else None,
            tier_computed_at=state["computed_at"],
        )


@get("/v1/catalog", tags=["catalog"], security=[{}])
async def catalog() -> dict:
    """Product kinds with yearly prices and lifecycle periods, and the volume tiers."""
    return {
        "kinds": [kind.to_dict() for kind in DEFAULT_CATALOG.values()],
        "tiers": [{"name": t.name, "from": t.threshold.to_dict(), "discount_percent": t.discount_percent}
                  for t in pricing.DEFAULT_TIERS],
    }
