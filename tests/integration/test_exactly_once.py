"""No effect happens twice: duplicate messages, racing workers, concurrent requests with one key."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from tables.events import Event
from tables.operations import Operation
from tests.api import builders
from tests.integration.flows import balance, buy, charges_for, db, ledger_sums, product_count, wait_done
from worker.actors.purchases import purchase
from worker.execution import run_operation
from worker.queue import operation_message


def test_the_same_message_delivered_twice_charges_once(api, broker, workers):
    owner, org = builders.funded(api, 10_000)
    op_id = buy(api, owner, org, "twice.fr").json()["id"]
    broker.enqueue(operation_message("purchase", op_id))  # a duplicate of the one the API sent
    broker.enqueue(operation_message("purchase", op_id))
    workers()

    op = wait_done(api, owner, op_id)
    broker.join("operations", timeout=20_000)

    assert op["status"] == "succeeded"
    assert product_count(org) == 1
    assert charges_for(org) == [1500]
    assert balance(api, owner, org) == 10_000 - 1500


def test_workers_racing_on_one_operation_apply_it_once(api):
    owner, org = builders.funded(api, 10_000)
    op_id = buy(api, owner, org, "race.fr").json()["id"]

    async def race():
        return await asyncio.gather(*(run_operation(op_id, purchase) for _ in range(5)))

    outcomes = [outcome for outcome, _ in db(race())]

    assert outcomes.count("succeeded") == 1
    assert set(outcomes) <= {"succeeded", "already_finished"}
    assert product_count(org) == 1
    assert charges_for(org) == [1500]
    assert db(Event.count().where((Event.organization_id == org) & (Event.type == "product.purchased")).run()) == 1


def test_twenty_concurrent_requests_with_one_key_make_one_operation(api, workers):
    workers()
    owner, org = builders.funded(api, 10_000)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: buy(api, owner, org, "once.fr", key="k-1"), range(20)))

    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["id"] for a in answers}) == 1
    assert wait_done(api, owner, answers[0].json()["id"])["status"] == "succeeded"
    assert db(Operation.count().where(Operation.organization_id == org).run()) == 2  # top-up + purchase
    assert product_count(org) == 1
    assert charges_for(org) == [1500]
    assert ledger_sums() == {"EUR": 0}


def test_same_key_with_another_body_is_refused(api):
    owner = builders.person(api)
    org = builders.organization(api, owner)
    first = buy(api, owner, org, "first.fr", key="k-2")

    again = buy(api, owner, org, "second.fr", key="k-2")

    assert first.status_code == 202
    assert again.status_code == 422
    assert again.json()["error"]["code"] == "idempotency_key_reused"
    assert db(Operation.count().where(Operation.kind == "purchase").run()) == 1


def test_a_request_without_a_key_gets_its_own_operation(api, workers):
    workers()
    owner, org = builders.funded(api, 10_000)

    first = buy(api, owner, org, "a.fr", kind="mailbox")
    second = buy(api, owner, org, "a.fr", kind="mailbox")

    assert first.json()["id"] != second.json()["id"]
    assert [wait_done(api, owner, a.json()["id"])["status"] for a in (first, second)] == ["succeeded"] * 2
    assert charges_for(org) == [2400, 2400]


def test_replaying_a_purchase_after_it_succeeded_returns_the_same_operation(api, workers):
    workers()
    owner, org = builders.funded(api, 10_000)
    first = buy(api, owner, org, "replay.fr", key="k-replay")
    assert wait_done(api, owner, first.json()["id"])["status"] == "succeeded"

    again = buy(api, owner, org, "replay.fr", key="k-replay")

    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["status"] == "succeeded"
    assert charges_for(org) == [1500]


def test_a_message_naming_several_operations_runs_each_once_and_its_duplicate_nothing(api, broker, workers):
    owner, org = builders.funded(api, 10_000)
    op_ids = [buy(api, owner, org, f"named-{n}.fr").json()["id"] for n in range(3)]
    broker.enqueue(operation_message("purchase", op_ids))  # duplicates of the ones the API sent
    broker.enqueue(operation_message("purchase", list(reversed(op_ids))))
    workers()

    done = [wait_done(api, owner, op_id) for op_id in op_ids]
    broker.join("operations", timeout=20_000)

    assert [op["status"] for op in done] == ["succeeded"] * 3
    assert product_count(org) == 3
    assert charges_for(org) == [1500] * 3
    assert balance(api, owner, org) == 10_000 - 3 * 1500
    attempts = db(Operation.select(Operation.attempts).where(Operation.id.is_in(op_ids)).run())
    assert attempts == [{"attempts": 1}] * 3
