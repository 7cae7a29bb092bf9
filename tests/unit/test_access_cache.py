"""The access cache reads an entry once for all the requests that miss it at the same time."""

from __future__ import annotations

import asyncio

import pytest

from tables.access_cache import AccessCache


class Reads:
    """A read that waits until released, counting how often it ran."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.count = 0
        self.release = asyncio.Event()

    async def __call__(self):
        self.count += 1
        await self.release.wait()
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def misses(cache: AccessCache, read: Reads, n: int) -> list:
    waiting = [asyncio.ensure_future(cache.load("key", read)) for _ in range(n)]
    await asyncio.sleep(0)  # every request has missed before the read answers
    read.release.set()
    return await asyncio.gather(*waiting, return_exceptions=True)


def test_requests_missing_one_entry_at_once_share_one_read():
    async def scenario():
        cache, read = AccessCache(ttl=60), Reads({"account": "acc_1"})
        answers = await misses(cache, read, 20)
        again = await cache.load("key", read)
        return read.count, answers, again

    count, answers, again = asyncio.run(scenario())
    assert count == 1
    assert answers == [{"account": "acc_1"}] * 20 and again == {"account": "acc_1"}


def test_a_failed_read_fails_its_waiters_and_the_next_request_reads_again():
    async def scenario():
        cache, failing = AccessCache(ttl=60), Reads(ConnectionError("database down"))
        answers = await misses(cache, failing, 5)
        working = Reads("found")
        working.release.set()
        return failing.count, answers, await cache.load("key", working), working.count

    count, answers, after, reads_after = asyncio.run(scenario())
    assert count == 1 and all(isinstance(answer, ConnectionError) for answer in answers)
    assert (after, reads_after) == ("found", 1)


@pytest.mark.parametrize("answer", [None, "member"])
def test_a_change_during_a_read_makes_later_requests_read_afresh(answer):
    async def scenario():
        cache, before = AccessCache(ttl=60), Reads(answer)
        first = asyncio.ensure_future(cache.load("key", before))
        await asyncio.sleep(0)
        cache.changed()  # say the member was removed while their access was being read
        after = Reads("after the change")
        after.release.set()
        later = await cache.load("key", after)
        before.release.set()
        await first
        return later, after.count, await cache.load("key", Reads("never read"))

    later, reads_after, kept = asyncio.run(scenario())
    assert (later, reads_after) == ("after the change", 1)
    assert kept == "after the change"  # the read from before the change was not kept
