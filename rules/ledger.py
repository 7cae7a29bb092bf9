"""Double-entry ledger: every operation's entries sum to zero per currency."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from rules.errors import (
    CreditLimitExceeded,
    InsufficientFunds,
    InvalidMoney,
    SettlementExceedsOwed,
    UnknownPaymentMethod,
)
from rules.money import Money
from rules.permissions import PAYMENT_METHODS


class Book(StrEnum):
    """The books a ledger line is booked to (the values stored in `ledger_entries.book`)."""

    PREPAID = "prepaid"  # an organization's prepaid balance; positive = money it has
    INVOICE = "invoice"  # an organization's postpaid debt (a receivable); negative = owed
    REVENUE = "revenue"  # what tenure earned, keyed by payer for volume tiers
    CASH = "cash"  # money that came in from outside


PREPAID = Book.PREPAID
INVOICE = Book.INVOICE
REVENUE = Book.REVENUE
CASH = Book.CASH
BOOKS = frozenset(Book)
# The books that are an organization's own position (its balance and what it owes).
OWN_BOOKS = (Book.PREPAID, Book.INVOICE)


class EntryKind(StrEnum):
    """What a ledger line is, as listed in an organization's transactions and statements (the
    values stored in `ledger_entries.kind`)."""

    TOPUP = "topup"
    SETTLEMENT = "settlement"
    PURCHASE = "purchase"
    RENEWAL = "renewal"
    RESTORE_FEE = "restore_fee"
    CHARGE = "charge"  # a charge whose caller did not say what it was for


# Money received (counted positive in a statement); every other kind is money spent.
RECEIVED = frozenset({EntryKind.TOPUP, EntryKind.SETTLEMENT})


@dataclass(frozen=True)
class Entry:
    """One line of the ledger: an amount booked to one book for one organization."""

    book: Book
    organization_id: str | None
    amount: Money
    kind: EntryKind = field(default=EntryKind.CHARGE, compare=False)

    def __post_init__(self) -> None:
        if self.book not in BOOKS:
            raise ValueError(f"unknown book {self.book!r}; books are {sorted(BOOKS)}")


def topup(org_id: str, amount: Money) -> list[Entry]:
    """Entries for `org_id` adding `amount` to its prepaid balance."""
    if amount.amount <= 0:
        raise InvalidMoney(f"a top-up must be a positive amount, got {amount}")
    # Cash keeps the org id too, so every euro that came in can be traced to its payer.
    return [Entry(PREPAID, org_id, amount, EntryKind.TOPUP), Entry(CASH, org_id, -amount, EntryKind.TOPUP)]


def settle(org_id: str, amount: Money) -> list[Entry]:
    """Entries for a payment of `amount` received against what `org_id` owes on invoice."""
    if amount.amount <= 0:
        raise InvalidMoney(f"a settlement must be a positive amount, got {amount}")
    kind = EntryKind.SETTLEMENT
    return [Entry(INVOICE, org_id, amount, kind), Entry(CASH, org_id, -amount, kind)]


def charge(payer_id: str, amount: Money, method: str, kind: EntryKind = EntryKind.CHARGE) -> list[Entry]:
    """Entries charging `payer_id` `amount` by `method` ("prepaid" or "invoice")."""
    if method not in PAYMENT_METHODS:
        raise UnknownPaymentMethod(
            f"unknown payment method {method!r}; valid methods are: {', '.join(sorted(PAYMENT_METHODS))}"
        )
    if amount.is_negative():
        raise InvalidMoney(f"a charge cannot be negative, got {amount}")
    book = PREPAID if method == "prepaid" else INVOICE
    return [Entry(book, payer_id, -amount, kind), Entry(REVENUE, payer_id, amount, kind)]


def charge_parts(payer_id: str, parts: Iterable[tuple[EntryKind, Money]], method: str) -> list[Entry]:
    """Entries charging each (kind, amount) part (a renewal and its restore fee); empty parts
    are left out, but a charge of nothing at all still books one zero line."""
    parts = list(parts)
    kept = [(kind, amount) for kind, amount in parts if amount.amount] or parts[:1]
    return [entry for kind, amount in kept for entry in charge(payer_id, amount, method, kind)]


def check_credit(owed: Money, limit: Money, amount: Money) -> None:
    """CreditLimitExceeded if invoicing `amount` would take `owed` above `limit`."""
    if owed + amount > limit:
        room = limit - owed
        raise CreditLimitExceeded(
            f"this costs {amount} on invoice but {owed} is owed already and the credit limit is "
            f"{limit} (room left: {room if not room.is_negative() else Money.zero(limit.currency)}); "
            f"settle what is owed, pay from the prepaid balance, or ask for a higher limit"
        )


def check_settlement(owed: Money, amount: Money) -> None:
    """SettlementExceedsOwed if `amount` is more than is owed."""
    if amount > owed:
        raise SettlementExceedsOwed(f"{amount} is more than the {owed} owed; settle at most {owed}")


def check_funds(balance: Money, amount: Money) -> None:
    """InsufficientFunds if a prepaid `balance` cannot cover `amount`."""
    if balance < amount:
        raise InsufficientFunds(
            f"prepaid balance is {balance} but this costs {amount}; "
            f"top up at least {amount - balance} or pay another way"
        )


def balances(entries: Iterable[Entry]) -> dict[str, Money]:
    """Sum of `entries` per currency; every value is zero when the ledger balances."""
    sums: dict[str, Money] = {}
    for entry in entries:
        currency = entry.amount.currency
        sums[currency] = sums.get(currency, Money.zero(currency)) + entry.amount
    return sums


def book_balance(entries: Iterable[Entry], book: Book, organization_id: str | None, currency: str) -> Money:
    """Sum of one organization's entries in one book, in `currency`."""
    total = Money.zero(currency)
    for entry in entries:
        if entry.book == book and entry.organization_id == organization_id:
            total = total + entry.amount
    return total
