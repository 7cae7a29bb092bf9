"""Charging a payer inside an operation's transaction.

Every operation of one payer moves the same balance row, so its lock is what serializes
them. Inside `run_started` the charge is checked at once (InsufficientFunds raises where it
did) but booked last (`booked_last`): the ledger rows, the tier flag, then the balance's
conditional UPDATE as the transaction's last statement before COMMIT, so the row is held
for one round trip instead of the rest of the operation's work.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from rules import ledger as booking
from rules.money import Money
from tables import ledger
from tables.clock import clock

_deferred: ContextVar[list | None] = ContextVar("tenure_deferred_charges", default=None)


async def charge(payer_id: str, amount: Money, method: str, operation_id: str, now: datetime) -> bool:
    """Books the charge; InsufficientFunds if prepaid cannot cover it.

    Returns True when the payer's tier was newly flagged for recalculation
    (the caller sends one message after commit; later charges ride along); inside
    `booked_last` it answers False and `book_deferred` answers the payers flagged.
    """
    entries = booking.charge(payer_id, amount, method)
    if method == booking.PREPAID:
        balance, currency = await ledger.prepaid_balance(payer_id)
        booking.check_funds(Money(balance, currency), amount)
    pending = _deferred.get()
    if pending is not None:
        pending.append((payer_id, amount, entries, operation_id, now))
        return False
    return await _book(payer_id, amount, entries, operation_id, now)


async def _book(payer_id: str, amount: Money, entries, operation_id: str, now: datetime) -> bool:
    # The flag's time is the wall clock's even at a test clock's `now`: the relay ages flags by it.
    newly_flagged = await ledger.flag_tier_recalc(payer_id, clock.now())
    try:
        await ledger.post(f"op:{operation_id}", entries, now, operation_id=operation_id)
    except ledger.Overdraft:  # spent by a concurrent charge since we read it
        balance, currency = await ledger.prepaid_balance(payer_id)
        booking.check_funds(Money(balance, currency), amount)
        raise
    return newly_flagged


@contextmanager
def booked_last() -> Iterator[list]:
    """Charges made inside wait in the answered list for `book_deferred`."""
    pending: list = []
    token = _deferred.set(pending)
    try:
        yield pending
    finally:
        _deferred.reset(token)


async def book_deferred(pending: list) -> list[str]:
    """Books the waiting charges (in the caller's transaction); answers the payers newly flagged."""
    flagged = []
    while pending:
        payer_id, amount, entries, operation_id, now = pending.pop(0)
        if await _book(payer_id, amount, entries, operation_id, now):
            flagged.append(payer_id)
    return flagged
