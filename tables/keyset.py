"""Keyset pages over (sort key, id): stable while rows are added, read through an index.

A page starts after the (key, id) of the last row of the previous one; ties on the key
are broken by id, so every row is seen once whatever the sort. The condition is written
`key >= k AND (key > k OR id > i)` (reversed when descending): the first half lets an
index on (…, key, id) start at k instead of scanning from the beginning.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from piccolo.columns import Column
from piccolo.query import Select

BATCH = 1000


@dataclass(frozen=True)
class Keyset:
    key: Column  # the sort column (may be the id itself)
    id: Column
    descending: bool = False
    after: tuple[Any, str] | None = None  # (key, id) of the last row already seen

    @property
    def key_name(self) -> str:
        return self.key._meta.name

    @property
    def by_id(self) -> bool:
        return self.key._meta.name == self.id._meta.name

    def apply(self, query: Select) -> Select:
        if self.after is not None:
            key, last_id = self.after
            if self.by_id:
                query = query.where(self.id < last_id if self.descending else self.id > last_id)
            elif self.descending:
                query = query.where(self.key <= key).where((self.key < key) | (self.id < last_id))
            else:
                query = query.where(self.key >= key).where((self.key > key) | (self.id > last_id))
        columns = (self.id,) if self.by_id else (self.key, self.id)
        return query.order_by(*columns, ascending=not self.descending)

    def after_row(self, row: dict) -> Keyset:
        return Keyset(self.key, self.id, self.descending, (row[self.key_name], row[self.id._meta.name]))


async def page(build: Callable[[], Select], keyset: Keyset, limit: int) -> list[dict]:
    """One page of `build()` (a fresh filtered select) in keyset order."""
    return await keyset.apply(build()).limit(limit)


async def batches(build: Callable[[], Select], keyset: Keyset, size: int = BATCH) -> AsyncIterator[list[dict]]:
    """Every row of `build()` in keyset order, `size` rows per query: memory stays one batch."""
    while True:
        rows = await keyset.apply(build()).limit(size)
        if rows:
            yield rows
        if len(rows) < size:
            return
        keyset = keyset.after_row(rows[-1])
