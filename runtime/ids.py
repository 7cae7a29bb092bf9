"""Public ids: a noun prefix and a time-ordered random part (sortable, so they page).

Ids made by one process sort in the order they were made, several in the same millisecond
included (ULID's monotonic rule): within a millisecond the random part of the previous id
is incremented, so the events feed (`?after=<event id>`) and keyset pages never put a later
id before an earlier one. A clock stepping back keeps the last millisecond until it passes it.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_RANDOM_BITS = 80
_lock = threading.Lock()
_last = (0, 0)  # (milliseconds, random part) of the last id made here
# Random bytes from the operating system (as `secrets` reads them), 4 KiB per system call
# instead of one call per id: the accept path makes two ids per request. A forked child
# starts with none, so that it never repeats its parent's.
_RANDOM_READ = 4096
_random = b""
_taken = 0


def _forget_random() -> None:
    global _random, _taken
    _random, _taken = b"", 0


os.register_at_fork(after_in_child=_forget_random)


def _randbits(bits: int) -> int:
    """`bits` random bits (called with `_lock` held)."""
    global _random, _taken
    size = (bits + 7) // 8
    if _taken + size > len(_random):
        _random, _taken = os.urandom(_RANDOM_READ), 0
    chunk = _random[_taken : _taken + size]
    _taken += size
    return int.from_bytes(chunk, "big") >> (size * 8 - bits)


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
        following = last_random + 1 + _randbits(16)  # still unguessable from the previous id
        if millis > last_millis:
            _last = (millis, _randbits(_RANDOM_BITS - 1))  # headroom for increments
        elif following < 1 << _RANDOM_BITS:
            _last = (last_millis, following)
        else:  # the random part is used up within this millisecond: borrow the next one
            _last = (last_millis + 1, _randbits(_RANDOM_BITS - 1))
        return _last


def floor(prefix: str, millis: int) -> str:
    """The smallest id `prefix` can have at `millis` (ms since the epoch): every id made earlier
    sorts below it."""
    return f"{prefix}_{_b32(millis, 10)}{_b32(0, 16)}"


def new_id(prefix: str) -> str:
    """`prefix_` + 10 chars of milliseconds + 16 random chars (80 bits), increasing per process."""
    millis, random_part = _next(time.time_ns() // 1_000_000)
    return f"{prefix}_{_b32(millis, 10)}{_b32(random_part, 16)}"
