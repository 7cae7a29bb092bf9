"""An organization's billing position: owed, the autorenew forecast and the low-balance warning.

Queries here, sums in rules.billing and rules.pricing. `check_low_balance` runs in the caller's
transaction after anything that moves the prepaid balance, the threshold or the forecast."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from rules import billing, pricing
from rules.catalog import catalog_for
from rules.money import Money
from tables import event_payloads as payloads
from tables import events, ledger
from tables.products import ProductState
from tables.statements import Statement, fetch

FORECAST_DAYS = 31  # the first autorenew attempt is 31 days before expiry


@dataclass(frozen=True)
class Forecast:
    amount: Money
    products: int


# Read at the end of every batch that charges a prepaid payer (its low-balance check).
_DUE = Statement(
    "SELECT kind FROM products WHERE (organization = {} OR reseller = {}) AND autorenew = {} AND state = {} "
    "AND expires_at > {} AND expires_at <= {}"
)


async def autorenew_forecast(payer_id: str, currency: str, now: datetime) -> Forecast:
    """The price, at the payer's current tier, of one more year of every active product it pays
    for whose autorenewal falls due in the next 31 days (or has not happened yet)."""
    due = await fetch(
        _DUE, payer_id, payer_id, True, ProductState.ACTIVE.value, now, now + timedelta(days=FORECAST_DAYS)
    )
    if not due:
        return Forecast(Money.zero(currency), 0)
    tier = await ledger.current_tier(payer_id)
    kinds = catalog_for(currency)
    prices = [pricing.price(kinds[row["kind"]].yearly_price, 1, tier) for row in due]
    return Forecast(billing.forecast(prices, currency), len(prices))


async def check_low_balance(
    org_id: str, now: datetime, operation_id: str | None = None, *, account: ledger.BalanceRecord | None = None
) -> bool:
    """Records `billing.low_balance` when the prepaid balance has just gone below the threshold
    or the autorenew forecast (once per dip: the state is kept on the balance row and cleared
    when the balance is back above). True if an event was recorded. `account`: the balance
    row as the caller's transaction just left it (read here otherwise)."""
    account = account or await ledger.account(org_id)
    if account is None:
        return False
    currency = account.currency
    upcoming = await autorenew_forecast(org_id, currency, now)
    threshold = Money(account.low_balance_threshold, currency)
    floor = billing.low_balance_floor(threshold, upcoming.amount)
    balance = Money(account.prepaid, currency)
    below = billing.crossing(balance, floor, account.below_low_balance)
    if below is None or not await ledger.mark_below(org_id, below):
        return False
    if not below:
        return False
    # With the operation that spent the money, so it is fanned out with that operation's events.
    await events.record(
        "billing.low_balance",
        org_id,
        now,
        operation_id=operation_id,
        data=payloads.BillingLowBalance(
            balance=payloads.money(balance.to_dict()),
            low_balance_threshold=payloads.money(threshold.to_dict()),
            autorenew_forecast=payloads.ForecastData(
                amount=upcoming.amount.amount, currency=upcoming.amount.currency, products=upcoming.products
            ),
        ),
    )
    return True
