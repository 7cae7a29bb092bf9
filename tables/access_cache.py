"""A short-lived, per-process cache of who an API key is and what an account may do where.

Authenticating a request reads the key (its account and scope) and the account's teams in
the organization; both change rarely, and every request needs them. Entries live
`ttl` seconds (TENURE_AUTH_CACHE_SECONDS, default 2; 0 turns the cache off) and only found
keys and memberships are kept (an unknown key or a non-member always asks the database,
so a new key or member works at once).

Revocation bound: every write that can narrow access (a key deleted or rotated, a member
removed or leaving, a member added to another team, a team made) goes through `tables/`,
which calls `changed()`: the process that made the change drops every entry at once. Other
processes (more web processes, the embedded workers of another host) see it when their
entries expire, at most `ttl` seconds after the change was committed.

One read per entry: requests that miss the same entry at once (all of them, under load,
when it expires) wait for the first one's read (`load`) instead of each reading it. A change
here forgets reads under way too, so a request that comes after it reads afresh.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

DEFAULT_TTL_S = 2.0
MAX_ENTRIES = 50_000  # past this, the cache starts again empty (no entry outlives its ttl anyway)


class AccessCache:
    def __init__(self, ttl: float = DEFAULT_TTL_S, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._monotonic = monotonic
        self._entries: dict[Hashable, tuple[float, int, Any]] = {}
        self._reading: dict[Hashable, asyncio.Future] = {}
        self._generation = 0

    def generation(self) -> int:
        """Read before a lookup and given back to `put`: an entry read before a change is not kept."""
        return self._generation

    def get(self, key: Hashable) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, generation, value = entry
        if generation != self._generation or self._monotonic() >= expires:
            self._entries.pop(key, None)
            return None
        return value

    def put(self, key: Hashable, value: Any, generation: int) -> None:
        if self.ttl <= 0 or value is None or generation != self._generation:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (self._monotonic() + self.ttl, generation, value)

    async def load(self, key: Hashable, read: Callable[[], Awaitable[Any]]) -> Any:
        """The entry, or what `read()` answers (kept unless None). Concurrent misses of one key
        share one read: the first request's, which runs to its end even if that request is
        cancelled; its error, if any, is each waiter's."""
        value = self.get(key)
        if value is not None:
            return value
        reading = self._reading.get(key)
        if reading is None or reading.get_loop() is not asyncio.get_running_loop():  # one loop's futures only
            reading = asyncio.ensure_future(self._read(key, read, self._generation))
            self._reading[key] = reading
        return await asyncio.shield(reading)

    async def _read(self, key: Hashable, read: Callable[[], Awaitable[Any]], generation: int) -> Any:
        try:
            value = await read()
            self.put(key, value, generation)
            return value
        finally:
            if generation == self._generation:  # else `changed` forgot it (a newer read may be there)
                self._reading.pop(key, None)

    def changed(self) -> None:
        """Something that grants access changed here: forget everything, reads under way included."""
        self._generation += 1
        self._entries.clear()
        self._reading.clear()


cache = AccessCache()


def configure(ttl: float) -> None:
    cache.ttl = ttl
    cache.changed()


def changed() -> None:
    cache.changed()
