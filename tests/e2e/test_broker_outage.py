"""Invariant 1 across processes: what was accepted while the broker was down is done once it is back."""

from __future__ import annotations

import math
import time

import pytest
from litestar.testing import TestClient

from rules.catalog import DEFAULT_CATALOG
from rules.pricing import DEFAULT_TIERS, price
from runtime.settings import Settings
from tables.operations import Operation
from tests.api import builders
from tests.e2e.conftest import tenure_env
from tests.e2e.support import accept_purchases, assert_each_purchase_done_once, relay_once, wait_until_finished
from tests.integration.flows import db
from tests.ratelimits import UNLIMITED
from web.app import create_app
from worker.broker import make_broker
from worker.queue import Sender

PURCHASES = 200
PRICE = DEFAULT_CATALOG["domain"].yearly_price.amount  # one year of a domain, tier A
FUNDS = 2 * PURCHASES * PRICE
STALL_S = 2


@pytest.mark.slow
def test_purchases_accepted_while_redis_is_down_all_complete_once_it_is_back(database_url, redis_server, processes):
    redis = redis_server(start=False)  # its port: nothing listens there yet
    settings = Settings(database_url=database_url, broker_url=redis.url, relay_stall_seconds=STALL_S, **UNLIMITED)
    names = [f"outage-{i:03d}.fr" for i in range(PURCHASES)]

    with TestClient(create_app(settings)) as api:
        owner = builders.person(api)
        org = builders.organization(api, owner)
        builders.fund(api, owner, org, FUNDS)

        started = time.monotonic()
        op_ids = accept_purchases(api, owner, org, names)
        accepting_s = time.monotonic() - started
        assert accepting_s < 60, f"{PURCHASES} purchases took {accepting_s:.1f}s to accept with Redis down"
        assert {api.get(f"/v1/operations/{op}", headers=owner.auth).json()["status"] for op in op_ids} == {"pending"}
        unsent = db(Operation.count().where(Operation.id.is_in(op_ids) & Operation.enqueued_at.is_null()).run())
        assert unsent == PURCHASES, "every failed send leaves its operation to the relay"

        redis.start()
        worker = processes.tenure(
            "worker", "worker", "--processes", "1", "--threads", "4", env=tenure_env(database_url, redis.url)
        )
        sender = Sender(make_broker(settings))
        try:
            wait_until_finished(
                org,
                PURCHASES,
                timeout=40,
                each_tick=relay_once(sender, STALL_S),
                tick_s=1.0,
                alive=lambda: None if worker.alive() else f"worker died\n{worker.tail()}",
            )
        except AssertionError as failure:
            raise AssertionError(f"{failure}\n{processes.tails()}") from None
        finally:
            sender.broker.close()

        prices = assert_each_purchase_done_once(api, owner, org, op_ids, names, FUNDS)

    # 200 domains at 15.00 cross tier B (2,500.00) on the way: once its recalculation has run,
    # later purchases are discounted. Full price up to the threshold, the tier-B price after it.
    tier_b = next(tier for tier in DEFAULT_TIERS if tier.name == "B")
    discounted = price(DEFAULT_CATALOG["domain"].yearly_price, 1, tier_b).amount
    assert set(prices) <= {PRICE, discounted}, prices
    assert prices.get(PRICE, 0) >= math.ceil(tier_b.threshold.amount / PRICE), prices
