"""Prepaid top-ups, settlements, the billing summary and its settings, and the public catalog."""

from __future__ import annotations

from datetime import datetime

import msgspec
from litestar import Controller, Request, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody

from rules import ledger as booking
from rules import permissions, pricing
from rules.catalog import catalog_for
from rules.money import Money
from rules.operations import OperationKind
from runtime.clock import clock
from tables import billing as position
from tables import ledger, operation_inserts, operations, tier_states
from tables.activity import Actor, record
from tables.api_keys import Caller
from tables.engine import transaction
from tables.operation_params import AmountIO, SettlementParams, TopUpParams
from tables.operations import OperationRecord
from web import idempotency
from web.access import Account, access
from web.errors import Conflict, Invalid
from web.schemas.billing import (
    BillingOut,
    BillingPatch,
    ForecastOut,
    FundsIn,
    FundsOut,
    PriceListCurrency,
    SettlementIn,
    SettlementOut,
)
from web.schemas.common import MoneyIO


def money_io(amount: int, currency: str) -> MoneyIO:
    return MoneyIO(amount=amount, currency=currency)


def _in_currency(amount: Money, currency: str, what: str) -> None:
    if amount.currency != currency:
        raise Conflict("currency_mismatch", f"this organization is billed in {currency}; {what} in that currency")


_ACTIVITY = {OperationKind.TOPUP: "funds.added", OperationKind.SETTLEMENT: "settlement.recorded"}


async def _booked(
    request: Request,
    account: Caller,
    org_id: str,
    data,
    kind: str,
    entries,
    now: datetime,
    params: TopUpParams | SettlementParams,
) -> tuple[OperationRecord, bool]:
    """Records a synchronous money operation and books `entries` with it, once per
    Idempotency-Key; answers the operation (its result: balance and owed after) and whether
    this request made it. The same key with another body: 422 `idempotency_key_reused`."""
    key = idempotency.key_for(request, org_id)
    wanted = idempotency.request_hash(request, data)
    row = operations.new_row(
        kind,
        org_id,
        now,
        account_id=account.id,
        status="succeeded",
        idem_key=key,
        request_hash=wanted,
        params=params,
        finished_at=now,
    )
    async with transaction():
        op, created = await operation_inserts.insert_or_get(row)
        if created:
            await ledger.post(op.id, entries, now, operation_id=op.id)
            await position.check_low_balance(org_id, now)
            await record(
                org_id,
                _ACTIVITY[kind],
                Actor.account(account),
                now,
                operation_id=op.id,
                amount=msgspec.to_builtins(params.amount),
            )
            account_row = await ledger.account_of(org_id)
            currency = account_row.currency
            result = {
                "balance": {"amount": account_row.prepaid, "currency": currency},
                "owed": {"amount": account_row.owed, "currency": currency},
            }
            await operations.set_result(op.id, result)
            op = msgspec.structs.replace(op, result=result)
    if not created:
        idempotency.check_same_request(op.request_hash, wanted)
        op = await operations.get(op.id)
    return op, created


class BillingController(Controller):
    path = "/v1/organizations/{org_id:str}"
    tags = ["billing"]

    @post("/funds", status_code=201)
    async def add_funds(
        self, request: Request, account: Account, org_id: FromPath[str], data: JSONBody[FundsIn]
    ) -> FundsOut:
        """Tops up the prepaid balance. Takes an Idempotency-Key: a replay returns the first answer."""
        found = await access(account, org_id, permissions.BILLING_MANAGE)
        amount = Money(data.amount.amount, data.amount.currency)
        entries = booking.topup(org_id, amount)
        _in_currency(amount, found.org.currency, "top up")
        op, _ = await _booked(
            request,
            account,
            org_id,
            data,
            OperationKind.TOPUP,
            entries,
            clock.now(),
            TopUpParams(amount=AmountIO(amount.amount, amount.currency)),
        )
        return FundsOut(
            operation_id=op.id, amount=money_io(**amount.to_dict()), balance=money_io(**op.result["balance"])
        )

    @post("/billing/settlements", status_code=201)
    async def settle(
        self, request: Request, account: Account, org_id: FromPath[str], data: JSONBody[SettlementIn]
    ) -> SettlementOut:
        """Records a payment received against what is owed on invoice (needs `billing:manage` and an
        Idempotency-Key). More than is owed: 409 `settlement_exceeds_owed`."""
        found = await access(account, org_id, permissions.BILLING_MANAGE)
        amount = Money(data.amount.amount, data.amount.currency)
        entries = booking.settle(org_id, amount)
        _in_currency(amount, found.org.currency, "settle")
        now = clock.now()
        key = idempotency.key_for(request, org_id)
        if key is None:
            raise Invalid(
                "idempotency_key_required",
                "a settlement needs an Idempotency-Key header (any unique text up to 200 "
                "characters) so that a retry cannot book it twice",
            )
        if not await operations.by_idem_key(key):  # a replay answers what it booked then
            account_row = await ledger.account_of(org_id)
            booking.check_settlement(Money(account_row.owed, amount.currency), amount)
        try:
            op, _ = await _booked(
                request,
                account,
                org_id,
                data,
                OperationKind.SETTLEMENT,
                entries,
                now,
                SettlementParams(amount=AmountIO(amount.amount, amount.currency), reference=data.reference),
            )
        except ledger.OverCredit:  # settled concurrently since the check
            account_row = await ledger.account_of(org_id)
            booking.check_settlement(Money(account_row.owed, amount.currency), amount)
            raise
        return SettlementOut(
            operation_id=op.id, amount=money_io(**amount.to_dict()), owed=money_io(**op.result["owed"])
        )

    @get("/billing")
    async def billing(self, account: Account, org_id: FromPath[str]) -> BillingOut:
        """Prepaid balance, what is owed on invoice and the credit limit, the volume tier in force,
        the low-balance threshold, and what the autorenewals due in the next 31 days will cost."""
        await access(account, org_id, permissions.BILLING_VIEW)
        return await _summary(org_id)

    @patch("/billing")
    async def update_billing(self, account: Account, org_id: FromPath[str], data: JSONBody[BillingPatch]) -> BillingOut:
        """Sets the low-balance threshold (needs `billing:manage`): `billing.low_balance` is sent
        once each time the prepaid balance goes below it (or below the autorenew forecast)."""
        found = await access(account, org_id, permissions.BILLING_MANAGE)
        threshold = Money(data.low_balance_threshold.amount, data.low_balance_threshold.currency)
        _in_currency(threshold, found.org.currency, "give the threshold")
        if threshold.is_negative():
            raise Invalid(
                "invalid_money",
                "low_balance_threshold cannot be negative; send 0 to rely on the autorenew forecast alone",
            )
        now = clock.now()
        async with transaction():
            await ledger.set_low_balance_threshold(org_id, threshold.amount)
            await position.check_low_balance(org_id, now)
            await record(
                org_id,
                "billing.threshold_changed",
                Actor.account(account),
                now,
                low_balance_threshold=threshold.to_dict(),
            )
        return await _summary(org_id)


async def _summary(org_id: str) -> BillingOut:
    row = await ledger.account_of(org_id)
    currency = row.currency
    state = await tier_states.tier_state(org_id)
    volume = Money(state["volume_12m"], state["currency"])
    tier = pricing.tier_for(volume)
    upcoming = pricing.next_tier(volume)
    forecast = await position.autorenew_forecast(org_id, currency, clock.now())
    return BillingOut(
        balance=money_io(row.prepaid, currency),
        volume_12m=money_io(**volume.to_dict()),
        tier=tier.name,
        discount_percent=tier.discount_percent,
        next_tier_at=money_io(**upcoming.threshold.to_dict()) if upcoming else None,
        tier_computed_at=state["computed_at"],
        owed=money_io(row.owed, currency),
        credit_limit=money_io(row.credit_limit, currency),
        low_balance_threshold=money_io(row.low_balance_threshold, currency),
        autorenew_forecast=ForecastOut(amount=forecast.amount.amount, currency=currency, products=forecast.products),
        below_low_balance=row.below_low_balance,
    )


EUR = PriceListCurrency("EUR")


@get("/v1/catalog", tags=["catalog"], security=[{}])
async def catalog(currency: FromQuery[PriceListCurrency] = EUR) -> dict:
    """Product kinds with yearly prices and lifecycle periods, and the volume tiers, in one
    currency (`?currency=`, default EUR; each currency has its own price list)."""
    currency = str(currency)
    return {
        "currency": currency,
        "kinds": [kind.to_dict() for kind in catalog_for(currency).values()],
        "tiers": [
            {"name": t.name, "from": t.threshold.to_dict(), "discount_percent": t.discount_percent}
            for t in pricing.grid_for(currency)
        ],
    }
