"""Charging a payer inside an operation's transaction.

Every operation of one payer moves the same balance row, so its lock is what serializes
them. Inside `run_started` the charge is checked at once (InsufficientFunds raises where it
did) but booked last (`booked_last`): the ledger rows, the tier flag, then the balance's
conditional UPDATE as the transaction's last statement before COMMIT, so the row is held
for one round trip instead of the rest of the operation's work.

In a batch (`worker.batching`, one transaction for many operations) the same holds for the
batch: each operation is checked against the balance as the batch read it less the batch's
charges so far and writes its ledger lines; the balance rows and tier flags move once per
payer at the batch's end (`settle_batch`), with the conditional UPDATE still the guard.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

import msgspec

from rules import ledger as booking
from rules.errors import CurrencyMismatch
from rules.money import DEFAULT_CURRENCY, Money
from runtime.clock import clock
from tables import billing as billing_position
from tables import ledger, tier_states
from worker import batch_memo

_deferred: ContextVar[list | None] = ContextVar("tenure_deferred_charges", default=None)


async def charge(
    payer_id: str,
    amount: Money,
    method: str,
    operation_id: str,
    now: datetime,
    *,
    kind: booking.EntryKind = booking.EntryKind.CHARGE,
    restore_fee: Money | None = None,
    product: dict | None = None,
) -> bool:
    """Books the charge (`restore_fee`, part of `amount`, as a line of its own); InsufficientFunds
    if prepaid cannot cover it, CreditLimitExceeded if invoicing it would pass the credit limit,
    CurrencyMismatch if it is not in the payer's currency. `product`: product_id, product_kind
    and client_id, kept on the ledger lines for transactions and statements.

    Returns True when the payer's tier was newly flagged for recalculation
    (the caller sends one message after commit; later charges ride along); inside
    `booked_last` it answers False and `book_deferred` answers the payers flagged.
    """
    fee = restore_fee or Money.zero(amount.currency)
    entries = booking.charge_parts(payer_id, [(kind, amount - fee), (booking.EntryKind.RESTORE_FEE, fee)], method)
    await _check(payer_id, amount, method)
    pending = _deferred.get()
    if pending is not None:
        pending.append((payer_id, amount, method, entries, operation_id, now, product))
        return False
    return await _book(payer_id, amount, method, entries, operation_id, now, product)


async def stage(
    payer_id: str,
    amount: Money,
    method: str,
    operation_id: str,
    now: datetime,
    *,
    kind: booking.EntryKind,
    product: dict,
) -> list[dict]:
    """In a batch written set-wise (`worker.purchase_batch`): checks the charge as `charge` does
    and adds its moves to the batch's (settled by `settle_batch`); answers its ledger lines as
    rows, for the batch to write with the others'."""
    entries = booking.charge_parts(payer_id, [(kind, amount)], method)
    await _check(payer_id, amount, method)
    rows, moves = ledger.entry_rows(f"op:{operation_id}", entries, now, operation_id, product=product)
    _add_to_batch(moves, operation_id, now)
    return rows


async def _check(payer_id: str, amount: Money, method: str, *, fresh: bool = False) -> None:
    account = await _account(payer_id, fresh=fresh)
    currency = account.currency if account else DEFAULT_CURRENCY
    if amount.currency != currency:
        raise CurrencyMismatch(
            f"this organization is billed in {currency}, not {amount.currency}; no conversion happens"
        )
    if method == booking.PREPAID:
        booking.check_funds(Money(account.prepaid if account else 0, currency), amount)
    else:
        owed = Money(account.owed if account else 0, currency)
        booking.check_credit(owed, Money(account.credit_limit if account else 0, currency), amount)


async def _account(payer_id: str, *, fresh: bool = False) -> ledger.BalanceRecord | None:
    """The payer's balance row; in a batch, as read once by the batch and moved by the charges
    of the batch so far (not yet written: `settle_batch` moves the row once, last)."""
    if fresh or not batch_memo.active():
        return await ledger.account(payer_id)
    row = await batch_memo.once(("account", payer_id), lambda: ledger.account(payer_id))
    pending = batch_memo.recall(BATCH_MOVES, {}).get(payer_id)
    if row is None or pending is None:
        return row
    return msgspec.structs.replace(row, prepaid=row.prepaid + pending["prepaid"], owed=row.owed + pending["owed"])


async def _book(
    payer_id: str, amount: Money, method: str, entries, operation_id: str, now: datetime, product: dict | None
) -> bool:
    if batch_memo.active():
        moves = await ledger.post(
            f"op:{operation_id}", entries, now, operation_id=operation_id, product=product, move_balances=False
        )
        _add_to_batch(moves, operation_id, now)
        return False
    # The flag's time is the wall clock's even at a test clock's `now`: the relay ages flags by it.
    newly_flagged = await tier_states.flag_tier_recalc(payer_id, clock.now())
    try:
        await ledger.post(f"op:{operation_id}", entries, now, operation_id=operation_id, product=product)
    except (ledger.Overdraft, ledger.OverCredit):  # spent by a concurrent charge since we read it
        await _check(payer_id, amount, method, fresh=True)
        raise
    if method == booking.PREPAID:
        await billing_position.check_low_balance(payer_id, now, operation_id)
    return newly_flagged


# In a batch: by payer, what its charges so far move ({"prepaid", "owed"}) and the last of them.
BATCH_MOVES = "balance_moves"


def _add_to_batch(moves: dict[str, dict[str, int]], operation_id: str, now: datetime) -> None:
    """Adds an operation's moves to its batch's (a copy: an operation rolled back takes its own)."""
    pending = dict(batch_memo.recall(BATCH_MOVES, {}))
    for org_id, deltas in moves.items():
        before = pending.get(org_id, {"prepaid": 0, "owed": 0})
        pending[org_id] = {
            "prepaid": before["prepaid"] + deltas["prepaid"],
            "owed": before["owed"] + deltas["owed"],
            "operation_id": operation_id,
            "now": now,
        }
    batch_memo.remember(BATCH_MOVES, pending)


async def settle_batch() -> list[str]:
    """The end of a batch's transaction: each payer charged flagged for its tier and its balance
    row moved, once, payers in one order (two batches never wait on each other crosswise), the
    rows' locks held only from here to COMMIT; a low balance is recorded with the payer's last
    operation of the batch. Answers the payers newly flagged. Overdraft or OverCredit when
    another transaction spent the balance since the batch read it: the batch is to run again.
    """
    flagged = []
    pending = batch_memo.recall(BATCH_MOVES, {})
    for payer_id in sorted(pending):
        moves = pending[payer_id]
        # The flag's time is the wall clock's even at a test clock's `now`: the relay ages flags by it.
        if await tier_states.flag_tier_recalc(payer_id, clock.now()):
            flagged.append(payer_id)
        account = await ledger.move(payer_id, prepaid=moves["prepaid"], owed=moves["owed"])
        if moves["prepaid"]:
            await billing_position.check_low_balance(payer_id, moves["now"], moves["operation_id"], account=account)
    return flagged


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
        charge = pending.pop(0)
        if await _book(*charge):
            flagged.append(charge[0])
    return flagged
