"""What the Structs of every resource share: checked strings, money, and cutting a page."""

from __future__ import annotations

from typing import Annotated, Protocol, TypeVar

from msgspec import Meta, Struct

# Every string a request stores or looks up is checked here, once: no control characters
# (C0, DEL, C1: NUL breaks PostgreSQL, line breaks break logs). msgspec checks the length
# bounds first, so a pattern only ever runs on a short string.
CONTROL_CHARACTERS = r"\x00-\x1f\x7f-\x9f"
# A look-ahead over the whole string: `$` alone would let a trailing line break through.
TEXT_PATTERN = f"^(?![\\s\\S]*[{CONTROL_CHARACTERS}])"
# At least one non-blank character (names are stored stripped).
NAME_PATTERN = TEXT_PATTERN + r"\s*\S"
EMAIL_PATTERN = TEXT_PATTERN + r"[^@\s]+@[^@\s]+\.[^@\s]+$"

# How a failed pattern reads in a 400 answer ("Expected <this> - at `$.field`").
PATTERN_MEANINGS = {
    TEXT_PATTERN: "text without control characters (such as NUL or line breaks)",
    NAME_PATTERN: "a name with at least one visible character and no control characters (such as NUL or line breaks)",
    EMAIL_PATTERN: "an e-mail address like name@example.com, without spaces or control characters",
}

Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=NAME_PATTERN)]
Email = Annotated[str, Meta(min_length=3, max_length=320, pattern=EMAIL_PATTERN)]
# Ids and references (an id of ours, a client's external_ref).
Ident = Annotated[str, Meta(min_length=1, max_length=200, pattern=TEXT_PATTERN)]
Currency = Annotated[str, Meta(pattern=r"^[A-Z]{3}$")]


class MoneyIO(Struct):
    amount: int
    currency: Currency


# Keeps every stored amount and balance far inside a 64-bit integer on both backends.
MAX_AMOUNT = 10**12


class MoneyIn(Struct):
    amount: Annotated[int, Meta(le=MAX_AMOUNT, description="minor units, at most 10^12")]
    currency: Currency


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


Row = TypeVar("Row", bound=dict | _Identified)  # a row as a dict, or a record with an `id`


def cut(rows: list[Row], limit: int) -> tuple[list[Row], str | None]:
    """Rows fetched with `limit + 1` (dicts or records): the page, and the cursor to the next one
    (None at the end)."""
    if len(rows) > limit:
        last = rows[limit - 1]
        return rows[:limit], last["id"] if isinstance(last, dict) else last.id
    return rows, None
