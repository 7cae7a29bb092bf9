"""A batch that breaks off with the database gone: what it held is taken again at once.

The database drops in the middle of a batch (the work's transaction fails, and so does the
write of the failure): nothing on the rows says the batch is gone, and their lease (the relay's
stall, long here) has not run out. The worker's own messages take them again, without waiting
for the lease and the relay.
"""

from __future__ import annotations

import pytest

from runtime.settings import Settings
from tables import operations
from tests.api import builders
from tests.integration.flows import buy, wait_done
from tests.ratelimits import UNLIMITED

LONG_STALL_S = 600  # the relay would send them again only after ten minutes


@pytest.fixture
def settings(database_url, redis_url):
    return Settings(
        database_url=database_url,
        broker_url=redis_url,
        relay_stall_seconds=LONG_STALL_S,
        allow_private_webhook_urls=True,
        **UNLIMITED,
    )


def test_a_batch_broken_off_by_the_database_leaves_nothing_running(api, workers, monkeypatch, database_url):
    owner, org = builders.funded(api, 100_000)
    op_ids = []
    for n in range(5):  # accepted before any worker runs: the first message claims them together
        answer = buy(api, owner, org, f"broken-batch-{n}.fr")
        assert answer.status_code == 202, answer.text
        op_ids.append(answer.json()["id"])

    real_claim, real_record_failure = operations.claim, operations.record_failure
    real_claim_many = operations.claim_many
    dropped = {"claim": 0, "record_failure": 0}

    async def claim_while_the_database_drops(op_id):
        if dropped["claim"] == 0:
            dropped["claim"] += 1
            raise ConnectionResetError("connection reset by the database server")
        return await real_claim(op_id)

    async def claim_many_while_the_database_drops(op_ids):  # a batch of purchases
        if dropped["claim"] == 0:
            dropped["claim"] += 1
            raise ConnectionResetError("connection reset by the database server")
        return await real_claim_many(op_ids)

    async def record_failure_while_the_database_is_down(op_id, failure):
        if dropped["record_failure"] == 0:
            dropped["record_failure"] += 1
            raise ConnectionRefusedError("the database server is down")
        return await real_record_failure(op_id, failure)

    monkeypatch.setattr(operations, "claim", claim_while_the_database_drops)
    monkeypatch.setattr(operations, "claim_many", claim_many_while_the_database_drops)
    monkeypatch.setattr(operations, "record_failure", record_failure_while_the_database_is_down)
    workers()

    done = [wait_done(api, owner, op_id, timeout=20) for op_id in op_ids]

    # The fault did happen, once. Run as one set (a batch of purchases), the batch had nothing
    # of its own to record: the whole batch broke off.
    assert dropped["claim"] == 1
    assert dropped["record_failure"] == 0
    assert [op["status"] for op in done] == ["succeeded"] * 5
    products = api.get(f"/v1/organizations/{org}/products", headers=owner.auth).json()["items"]
    assert sorted(p["name"] for p in products) == [f"broken-batch-{n}.fr" for n in range(5)]
