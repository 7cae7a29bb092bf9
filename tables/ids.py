"""Public ids: a noun prefix and a time-ordered random part (sortable, so they page).

Ids made by one process sort in the order they were made, several in the same millisecond
included (ULID's monotonic rule): within a millisecond the random part of the previous id
is incremented, so the events feed (`?after=<event id>`) and keyset pages never put a later
id before an earlier one. A clock stepping back keeps the last millisecond until it passes it.
"""

from __future__ import annotations

import secrets
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_RANDOM_BITS = 80
_lock = threading.Lock()
_last = (0, 0)  # (milliseconds, random part) of the last id made here


def _b32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def _next(millis: int) -> tuple[int, int]:
    global _last
    with _lock:
        last_millis, last_random = _last
        following = last_random + 1 + secrets.randbits(16)  # still unguessable from the previous id
        if millis > last_millis:
            _last = (millis, secrets.randbits(_RANDOM_BITS - 1))  # headroom for increments
        elif following < 1 << _RANDOM_BITS:
            _last = (last_millis, following)
        else:  # the random part is used up within this millisecond: borrow the next one
            _last = (last_millis + 1, secrets.randbits(_RANDOM_BITS - 1))
        return _last


def floor(prefix: str, millis: int) -> str:
    """The smallest id `prefix` can have at `millis` (ms since the epoch): every id made earlier
    sorts below it."""
    return f"{prefix}_{_b32(millis, 10)}{_b32(0, 16)}"


def new_id(prefix: str) -> str:
    """`prefix_` + 10 chars of milliseconds + 16 random chars (80 bits), increasing per process."""
    millis, random_part = _next(time.time_ns() // 1_000_000)
    return f"{prefix}_{_b32(millis, 10)}{_b32(random_part, 16)}"
