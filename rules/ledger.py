"""Double-entry ledger: every operation's entries sum to zero per currency."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rules.errors import (
    CreditLimitExceeded,
    InsufficientFunds,
    InvalidMoney,
    SettlementExceedsOwed,
    UnknownPaymentMethod,
)
from rules.money import Money
from rules.permissions import PAYMENT_METHODS

PREPAID = "prepaid"  # an organization's prepaid balance; positive = money it has
INVOICE = "invoice"  # an organization's postpaid debt (a receivable); negative = owed
REVENUE = "revenue"  # what tenure earned, keyed by payer for volume tiers
CASH = "cash"  # money that came in from outside
BOOKS = frozenset({PREPAID, INVOICE, REVENUE, CASH})


@dataclass(frozen=True)
class Entry:
    """One line of the ledger: an amount booked to one book for one organization."""

    book: str
    organization_id: str | None
    amount: Money
    # What the line is, as listed in an organization's transactions: topup, purchase,
    # renewal, restore_fee, settlement (or charge when the caller does not say).
    kind: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.book not in BOOKS:
            raise ValueError(f"unknown book {self.book!r}; books are {sorted(BOOKS)}")


def topup(org_id: str, amount: Money) -> list[Entry]:
    """Entries for `org_id` adding `amount` to its prepaid balance."""
    if amount.amount <= 0:
        raise InvalidMoney(f"a top-up must be a positive amount, got {amount}")
    # Cash keeps the org id too, so every euro that came in can be traced to its payer.
    return [Entry(PREPAID, org_id, amount, "topup"), Entry(CASH, org_id, -amount, "topup")]


def settle(org_id: str, amount: Money) -> list[Entry]:
    """Entries for a payment of `amount` received against what `org_id` owes on invoice."""
    if amount.amount <= 0:
        raise InvalidMoney(f"a settlement must be a positive amount, got {amount}")
    return [Entry(INVOICE, org_id, amount, "settlement"), Entry(CASH, org_id, -amount, "settlement")]


def charge(payer_id: str, amount: Money, method: str, kind: str = "charge") -> list[Entry]:
    """Entries charging `payer_id` `amount` by `method` ("prepaid" or "invoice")."""
    if method not in PAYMENT_METHODS:
        raise UnknownPaymentMethod(
            f"unknown payment method {method!r}; valid methods are: {', '.join(sorted(PAYMENT_METHODS))}"
        )
    if amount.is_negative():
        raise InvalidMoney(f"a charge cannot be negative, got {amount}")
    book = PREPAID if method == "prepaid" else INVOICE
    return [Entry(book, payer_id, -amount, kind), Entry(REVENUE, payer_id, amount, kind)]


def charge_parts(payer_id: str, parts: Iterable[tuple[str, Money]], method: str) -> list[Entry]:
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


def book_balance(entries: Iterable[Entry], book: str, organization_id: str | None, currency: str) -> Money:
    """Sum of one organization's entries in one book, in `currency`."""
    total = Money.zero(currency)
    for entry in entries:
        if entry.book == book and entry.organization_id == organization_id:
            total = total + entry.amount
    return total
