"""Money as integer minor units with a currency; never a float."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeGuard

from rules.errors import CurrencyMismatch, InvalidMoney

# ISO 4217 currencies whose minor unit is not 1/100; only formatting needs this.
_MINOR_DIGITS = {
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
}

# The currency of the default price list: what an organization is billed in when nothing says otherwise.
DEFAULT_CURRENCY = "EUR"


def _is_int(value: object) -> TypeGuard[int]:
    # bool is an int subclass, but True euros is always a bug.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_currency(value: object) -> bool:
    return isinstance(value, str) and len(value) == 3 and all("A" <= letter <= "Z" for letter in value)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units (cents) of a currency such as "EUR"."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if not _is_int(self.amount):
            raise InvalidMoney(f"amount must be an integer number of minor units (cents), got {self.amount!r}")
        if not _is_currency(self.currency):
            raise InvalidMoney(f"currency must be three uppercase letters such as EUR, got {self.currency!r}")

    @classmethod
    def eur(cls, amount: int) -> Money:
        return cls(amount, "EUR")

    @classmethod
    def zero(cls, currency: str = DEFAULT_CURRENCY) -> Money:
        return cls(0, currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}; use amounts in one currency")

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, factor: object) -> Money:
        if not _is_int(factor):
            raise InvalidMoney(f"money can only be multiplied by an integer, got {factor!r}")
        return Money(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def _compare(self, other: object) -> tuple[int, int] | None:
        if not isinstance(other, Money):
            return None
        self._same_currency(other)
        return self.amount, other.amount

    def __lt__(self, other: object) -> bool:
        pair = self._compare(other)
        return NotImplemented if pair is None else pair[0] < pair[1]

    def __le__(self, other: object) -> bool:
        pair = self._compare(other)
        return NotImplemented if pair is None else pair[0] <= pair[1]

    def __gt__(self, other: object) -> bool:
        pair = self._compare(other)
        return NotImplemented if pair is None else pair[0] > pair[1]

    def __ge__(self, other: object) -> bool:
        pair = self._compare(other)
        return NotImplemented if pair is None else pair[0] >= pair[1]

    def is_negative(self) -> bool:
        return self.amount < 0

    def discounted(self, percent: int) -> Money:
        """This amount less `percent` %, rounded half away from zero (like ROUND_HALF_UP)."""
        if not _is_int(percent) or not 0 <= percent <= 100:
            raise InvalidMoney(f"discount must be an integer percent from 0 to 100, got {percent!r}")
        scaled = abs(self.amount) * (100 - percent)
        # Integer half-up on the magnitude keeps a refund the exact mirror of a charge.
        rounded = (scaled + 50) // 100
        return Money(rounded if self.amount >= 0 else -rounded, self.currency)

    def to_dict(self) -> dict[str, int | str]:
        return {"amount": self.amount, "currency": self.currency}

    def __str__(self) -> str:
        """Human form such as "12.00 EUR" (for messages, never for storage)."""
        digits = _MINOR_DIGITS.get(self.currency, 2)
        sign = "-" if self.amount < 0 else ""
        units, minor = divmod(abs(self.amount), 10**digits)
        fraction = f".{minor:0{digits}d}" if digits else ""
        return f"{sign}{units}{fraction} {self.currency}"


def total(items: Iterable[Money], currency: str) -> Money:
    """Sum of `items`, all in `currency`; zero when there are none."""
    result = Money.zero(currency)
    for item in items:
        result = result + item
    return result
