"""Billing arithmetic: running balances, statement totals, the autorenew forecast and the
low-balance crossing. Pure: rows come in as plain values, sums go out."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rules.errors import InvalidMonth
from rules.ledger import INVOICE, PREPAID, RECEIVED
from rules.money import Money

# A sandbox's invoices are play too: it opens with this credit limit (minor units; ops may change it),
# where a production organization opens with 0 (invoices refused until ops set a limit).
SANDBOX_CREDIT_LIMIT = 100_000_000

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def payer_of(organization_id: str, reseller_id: str | None) -> str:
    """Who pays for a product (its renewals): a reseller client's product is paid by the
    reseller; anything else by its organization. `reseller_id`: None unless the product is a
    reseller client's."""
    return reseller_id or organization_id


def month_bounds(text: str) -> tuple[datetime, datetime]:
    """[start, end) in UTC of a month written YYYY-MM; InvalidMonth otherwise."""
    match = _MONTH.match(text or "")
    year, month = (int(match[1]), int(match[2])) if match else (0, 0)
    if not match or not 1 <= month <= 12 or year < 1970:
        raise InvalidMonth(f"a statement month is written YYYY-MM (such as 2027-01), got {text!r}")
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return start, end


@dataclass(frozen=True)
class Position:
    """An organization's prepaid balance and what it owes on invoice, after some ledger lines."""

    balance: int = 0
    owed: int = 0

    def after(self, book: str, amount: int) -> Position:
        """The position after one of the organization's lines (`amount` signed as booked:
        an invoice line of -x is x more owed)."""
        if book == PREPAID:
            return Position(self.balance + amount, self.owed)
        if book == INVOICE:
            return Position(self.balance, self.owed - amount)
        return self


def running(start: Position, lines: Iterable[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Position]]:
    """Each line with the position after it, starting from `start`."""
    position, out = start, []
    for line in lines:
        position = position.after(line["book"], line["amount"])
        out.append((line, position))
    return out


@dataclass
class Statement:
    """A month's totals, in the organization's currency (minor units)."""

    currency: str
    by_kind: dict[str, int] = field(default_factory=dict)
    by_client: dict[str | None, dict[str, int]] = field(default_factory=dict)
    opening: Position = Position()
    closing: Position = Position()

    def to_dict(self, client_names: Mapping[str, str] | None = None) -> dict[str, Any]:
        names = client_names or {}

        def money(amount: int) -> dict[str, Any]:
            return {"amount": amount, "currency": self.currency}

        return {
            "currency": self.currency,
            "opening": {"balance": money(self.opening.balance), "owed": money(self.opening.owed)},
            "closing": {"balance": money(self.closing.balance), "owed": money(self.closing.owed)},
            "totals": [{"kind": kind, "total": money(amount)} for kind, amount in sorted(self.by_kind.items())],
            "clients": [
                {
                    "client_id": client,
                    "name": names.get(client or "", None),
                    "totals": [{"kind": kind, "total": money(amount)} for kind, amount in sorted(kinds.items())],
                    "total": money(sum(kinds.values())),
                }
                for client, kinds in sorted(self.by_client.items(), key=lambda item: item[0] or "")
            ],
        }


def statement(currency: str, opening: Position, lines: Iterable[Mapping[str, Any]]) -> Statement:
    """Totals of a month's lines of the organization's own books (prepaid and invoice).

    Per kind: top-ups and settlements as money received (positive), charges (purchases,
    renewals, restore fees) as money spent (positive). Per client: the charges for products
    of each client (None: the organization's own), split by product kind and line kind,
    which is what a reseller re-invoices."""
    result = Statement(currency, opening=opening, closing=opening)
    position = opening
    for line in lines:
        position = position.after(line["book"], line["amount"])
        spent = -line["amount"] if line["kind"] not in RECEIVED else line["amount"]
        result.by_kind[line["kind"]] = result.by_kind.get(line["kind"], 0) + spent
        if line["kind"] not in RECEIVED:
            label = f"{line['product_kind']}.{line['kind']}" if line.get("product_kind") else line["kind"]
            per_client = result.by_client.setdefault(line.get("client_id"), {})
            per_client[label] = per_client.get(label, 0) + spent
    result.closing = position
    return result


def forecast(prices: Iterable[Money], currency: str) -> Money:
    """What the autorenewals due soon cost together (each already priced at the payer's tier)."""
    total = Money.zero(currency)
    for price in prices:
        total = total + price
    return total


def low_balance_floor(threshold: Money, upcoming: Money) -> Money:
    """The balance under which an organization is warned: its threshold or, if larger, what
    its autorenewals due soon will take."""
    return threshold if threshold >= upcoming else upcoming


def crossing(balance: Money, floor: Money, was_below: bool) -> bool | None:
    """The new below-floor state if it changed (True: crossed downwards, warn once), else None."""
    below = balance < floor
    return below if below != was_below else None
