"""The broker holds nothing the relay cannot send again: a restore needs only the database.

Operations accepted (202) and queued in Redis, then Redis loses everything (FLUSHDB, as a
broker restored empty or from an older snapshot would be): once workers run, the relay
sends the operations again and each completes exactly once.
"""

from __future__ import annotations

import time

import redis

from rules.catalog import DEFAULT_CATALOG
from tests.api import builders
from tests.databases import REDIS_URL
from tests.e2e.support import (
    accept_purchases,
    assert_each_purchase_done_once,
    relay_once,
    statuses,
    wait_until_finished,
)

PURCHASES = 20
PRICE = DEFAULT_CATALOG["domain"].yearly_price.amount
FUNDS = 2 * PURCHASES * PRICE
STALL_S = 2  # the integration settings' relay_stall_seconds


def queued_messages(client: redis.Redis) -> int:
    return sum(client.hlen(key) for key in client.scan_iter("dramatiq:*.msgs"))


def test_operations_queued_when_the_broker_loses_everything_all_complete_exactly_once(api, sender, workers):
    owner, org = builders.funded(api, FUNDS)
    names = [f"flushed-{i:02d}.fr" for i in range(PURCHASES)]
    op_ids = accept_purchases(api, owner, org, names)  # no worker runs yet: all wait in Redis
    client = redis.Redis.from_url(REDIS_URL)
    try:
        # The web hands messages to its outbox and answers 202 before they reach Redis: they all do soon.
        deadline = time.monotonic() + 10
        while queued_messages(client) < PURCHASES and time.monotonic() < deadline:
            time.sleep(0.05)
        assert queued_messages(client) == PURCHASES
        client.flushdb()
        assert queued_messages(client) == 0
    finally:
        client.close()
    assert statuses(org) == {"pending": PURCHASES}

    workers()
    wait_until_finished(org, PURCHASES, timeout=60, each_tick=relay_once(sender, STALL_S))

    assert_each_purchase_done_once(api, owner, org, op_ids, names, FUNDS)
