"""Charging a payer inside an operation's transaction."""

from __future__ import annotations

from datetime import datetime

from rules import ledger as booking
from rules.money import Money
from tables import ledger


async def charge(payer_id: str, amount: Money, method: str, operation_id: str, now: datetime) -> bool:
    """Books the charge; InsufficientFunds if prepaid cannot cover it.

    Returns True when the payer's tier was newly flagged for recalculation
    (the caller sends one message after commit; later charges ride along).
    """
    entries = booking.charge(payer_id, amount, method)
    if method == booking.PREPAID:
        balance, currency = await ledger.prepaid_balance(payer_id)
        booking.check_funds(Money(balance, currency), amount)
    try:
        await ledger.post(f"op:{operation_id}", entries, now, operation_id=operation_id)
    except ledger.Overdraft:  # spent by a concurrent charge since we read it
        balance, currency = await ledger.prepaid_balance(payer_id)
        booking.check_funds(Money(balance, currency), amount)
        raise
    return await ledger.flag_tier_recalc(payer_id, now)
