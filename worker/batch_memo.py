"""What the operations of one batch read once and share, inside the batch's one transaction.

A batch (`worker.batching`) runs many operations of a kind, often of one organization, in one
transaction: the permissions of whoever asked, the organization's row, its tier, its balance
row and whether its tier is already flagged are the same for all of them, so each is read (or
written) once per batch instead of once per operation (`once`, `remember`, `recall`).

What an operation reads or learns is staged while its work runs (`operation`) and kept for the
rest of the batch only if that work is kept: an operation rolled back to its savepoint takes its
staged entries with it, so nothing it wrote and undid is remembered. Outside a batch nothing is
remembered: every call reads.

What is remembered: rows the operations of a batch do not write themselves (the organization,
the permissions of whoever asked, the tier in force, the balance row as the batch first read
it), read once per batch (a change committed while a batch runs, a few milliseconds, is seen by
the next batch, as by an operation begun a moment earlier), and what the batch's charges will
move (`worker.charging`: the balance rows move once, at the batch's end, under their guard).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")
MISSING: Any = object()


class Memo:
    def __init__(self) -> None:
        self.kept: dict[Hashable, Any] = {}
        self.staged: dict[Hashable, Any] | None = None

    def get(self, key: Hashable) -> Any:
        if self.staged is not None and key in self.staged:
            return self.staged[key]
        return self.kept.get(key, MISSING)

    def put(self, key: Hashable, value: Any) -> None:
        (self.kept if self.staged is None else self.staged)[key] = value


_memo: ContextVar[Memo | None] = ContextVar("tenure_batch_memo", default=None)


def active() -> bool:
    return _memo.get() is not None


@contextmanager
def batch() -> Iterator[None]:
    """Remembers for the block (one batch's transaction)."""
    token = _memo.set(Memo())
    try:
        yield
    finally:
        _memo.reset(token)


@contextmanager
def operation() -> Iterator[None]:
    """One operation's work: what it remembers is kept only if the block ends without raising."""
    memo = _memo.get()
    if memo is None:
        yield
        return
    memo.staged = {}
    try:
        yield
    except BaseException:
        memo.staged = None
        raise
    memo.kept.update(memo.staged)
    memo.staged = None


async def once(key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
    """`load()`'s answer, read once per batch (every time outside a batch)."""
    memo = _memo.get()
    if memo is None:
        return await load()
    value = memo.get(key)
    if value is MISSING:
        value = await load()
        memo.put(key, value)
    return value


def recall(key: Hashable, default: Any = None) -> Any:
    """What the batch remembers under `key`, else `default`."""
    memo = _memo.get()
    value = MISSING if memo is None else memo.get(key)
    return default if value is MISSING else value


def remember(key: Hashable, value: Any) -> None:
    memo = _memo.get()
    if memo is not None:
        memo.put(key, value)
