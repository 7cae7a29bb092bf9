"""Purchases claimed together run in one transaction: as one set on PostgreSQL (checked in
Python, written by one statement), else (and when the set meets a name taken) each in a
savepoint of it.

A purchase that fails in a batch (its name taken by another of the batch, the prepaid balance
spent by the others, the credit limit passed) undoes its own writes only and ends failed with
its own events, while the others of the batch commit together. On PostgreSQL the statements a
purchase costs are counted (the worker's own, through asyncpg), so that the batch's savings
cannot silently come undone.
"""

from __future__ import annotations

import threading
from collections import Counter

import asyncpg.connection
import dramatiq.asyncio
import msgspec
import pytest

from rules.catalog import DEFAULT_CATALOG
from tables import events
from tables.ledger import LedgerEntry
from tests.api import builders
from tests.integration.flows import buy, db, wait_all, wait_done
from worker import charging, purchase_batch

PRICE = DEFAULT_CATALOG["domain"].yearly_price.amount


def balance(api, who, org) -> int:
    answer = api.get(f"/v1/organizations/{org}/billing", headers=who.auth)
    assert answer.status_code == 200, answer.text
    return answer.json()["balance"]["amount"]


def event_types(org: str, op_id: str) -> list[str]:
    return sorted(e["type"] for e in db(events.of(org)) if e["operation_id"] == op_id)


def test_a_failing_purchase_in_a_batch_does_not_undo_the_others(api, workers):
    owner, org = builders.funded(api, 4 * PRICE)
    other_owner, thin = builders.funded(api, PRICE)
    # All accepted before any worker runs: the first message claims them together (one batch).
    asked = {
        "first": buy(api, owner, org, "batch-a.fr"),
        "second": buy(api, owner, org, "batch-b.fr"),
        "same_name": buy(api, owner, org, "batch-a.fr"),
        "third": buy(api, owner, org, "batch-c.fr"),
        "paid": buy(api, other_owner, thin, "thin-a.fr"),
        "unpaid": buy(api, other_owner, thin, "thin-b.fr"),
        "over_credit": buy(api, other_owner, thin, "thin-c.fr", payment_method="invoice"),
    }
    assert {name: answer.status_code for name, answer in asked.items()} == dict.fromkeys(asked, 202)
    ids = {name: answer.json()["id"] for name, answer in asked.items()}
    workers()

    asker = {name: other_owner if name in ("paid", "unpaid", "over_credit") else owner for name in ids}
    done = {name: wait_done(api, asker[name], op_id) for name, op_id in ids.items()}

    outcomes = {name: (op["status"], op["error"] and op["error"]["code"]) for name, op in done.items()}
    assert outcomes == {
        "first": ("succeeded", None),
        "second": ("succeeded", None),
        "same_name": ("failed", "name_taken"),
        "third": ("succeeded", None),
        "paid": ("succeeded", None),
        "unpaid": ("failed", "insufficient_funds"),
        "over_credit": ("failed", "credit_limit_exceeded"),
    }
    owned = api.get(f"/v1/organizations/{org}/products", headers=owner.auth).json()["items"]
    assert sorted(p["name"] for p in owned) == ["batch-a.fr", "batch-b.fr", "batch-c.fr"]
    thin_owned = api.get(f"/v1/organizations/{thin}/products", headers=other_owner.auth).json()["items"]
    assert [p["name"] for p in thin_owned] == ["thin-a.fr"]
    assert (balance(api, owner, org), balance(api, other_owner, thin)) == (PRICE, 0)
    # Each failure has its own event and nothing of the purchase it did not make.
    assert event_types(org, ids["same_name"]) == ["operation.failed"]
    for name in ("unpaid", "over_credit"):
        assert event_types(thin, ids[name]) == ["operation.failed"]
    for name in ("first", "second", "third"):
        assert event_types(org, ids[name]) == ["operation.succeeded", "product.purchased"]
    assert event_types(thin, ids["paid"]) == ["operation.succeeded", "product.purchased"]


def test_a_batch_whose_balance_was_spent_under_it_runs_again_on_what_is_there(api, workers, monkeypatch):
    owner, org = builders.funded(api, 2 * PRICE)
    op_ids = [buy(api, owner, org, f"spent-{n}.fr").json()["id"] for n in range(4)]
    real_account = charging.ledger.account
    reads = {"stale": 0}

    async def read_before_it_was_spent(org_id):
        row = await real_account(org_id)
        if reads["stale"] == 0 and row is not None:  # as read just before another transaction spent it
            reads["stale"] += 1
            return msgspec.structs.replace(row, prepaid=row.prepaid + 2 * PRICE)
        return row

    monkeypatch.setattr(charging.ledger, "account", read_before_it_was_spent)
    workers()
    done = wait_all(api, owner, op_ids)

    assert reads["stale"] == 1  # the first run of the batch believed it could pay for all four
    assert sorted((op["status"], op["error"] and op["error"]["code"]) for op in done) == [
        ("failed", "insufficient_funds"),
        ("failed", "insufficient_funds"),
        ("succeeded", None),
        ("succeeded", None),
    ]
    owned = api.get(f"/v1/organizations/{org}/products", headers=owner.auth).json()["items"]
    assert len(owned) == 2
    assert balance(api, owner, org) == 0
    charged = db(LedgerEntry.select(LedgerEntry.operation_id).where(LedgerEntry.book == "prepaid").run())
    paid_ops = {op["id"] for op in done if op["status"] == "succeeded"}
    assert {row["operation_id"] for row in charged if row["operation_id"] in op_ids} == paid_ops


# What an executed purchase may cost, in statements the worker sends (its share of the batch's
# claim, BEGIN and COMMIT, the tier recalculation and the fan-out included).
# About one: each purchase's message claims (a batch of twenty, or nothing when a batch holds
# it already); the batch's few statements are shared. Savepoint by savepoint it was about ten.
STATEMENTS_PER_PURCHASE = 2
BATCH = 20


def count_worker_statements() -> tuple[Counter, object]:
    """Counts what asyncpg sends from the workers' event-loop thread from now on (the app's
    requests run elsewhere); answers the counts and an undo."""
    counts: Counter = Counter()
    connection = asyncpg.connection.Connection
    originals = {name: getattr(connection, name) for name in ("execute", "fetch", "fetchrow", "fetchval")}

    def counting(method):
        async def wrapper(self, query, *args, **kwargs):
            if threading.current_thread() is dramatiq.asyncio.get_event_loop_thread():
                counts[query.lstrip().split(None, 1)[0].upper()] += 1
            return await method(self, query, *args, **kwargs)

        return wrapper

    for name, method in originals.items():
        setattr(connection, name, counting(method))

    def undo() -> None:
        for name, method in originals.items():
            setattr(connection, name, method)

    return counts, undo


def test_an_executed_purchase_costs_a_bounded_number_of_statements(api, workers, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("statements are counted through asyncpg")
    owner, org = builders.funded(api, BATCH * PRICE)
    op_ids = [buy(api, owner, org, f"counted-{n}.fr").json()["id"] for n in range(BATCH)]
    counts, undo = count_worker_statements()
    try:
        workers(threads=1)
        done = wait_all(api, owner, op_ids)
    finally:
        undo()

    assert [op["status"] for op in done] == ["succeeded"] * BATCH
    assert counts["BEGIN"] + counts["COMMIT"] <= 6  # the batch's, the fan-out's, the tier's: not one per purchase
    assert sum(counts.values()) <= STATEMENTS_PER_PURCHASE * BATCH, counts


def test_failures_in_a_batch_written_as_one_set_keep_their_own_outcome_and_events(
    api, workers, database_url, monkeypatch
):
    owner, org = builders.funded(api, 2 * PRICE)
    asked = [buy(api, owner, org, f"one-set-{n}.fr") for n in range(4)]
    asked.append(buy(api, owner, org, "one-set-invoiced.fr", payment_method="invoice"))
    op_ids = [answer.json()["id"] for answer in asked]
    # Which operations the set-wise path ran to its end (it raises, having written nothing, when it leaves them).
    as_one_set: list[str] = []
    run_purchases = purchase_batch.run_purchases

    async def watched(claimed, bounds):
        ran, charged = await run_purchases(claimed, bounds)
        as_one_set.extend(each.operation_id for each in ran)
        return ran, charged

    monkeypatch.setattr(purchase_batch, "run_purchases", watched)
    postgres = database_url.startswith("postgresql")
    counts, undo = count_worker_statements() if postgres else (Counter(), lambda: None)
    try:
        workers(threads=1)
        done = wait_all(api, owner, op_ids)
    finally:
        undo()

    outcomes = {op["id"]: (op["status"], op["error"] and op["error"]["code"]) for op in done}
    assert sorted(outcomes.values(), key=str) == sorted(
        [
            ("succeeded", None),
            ("succeeded", None),
            ("failed", "insufficient_funds"),
            ("failed", "insufficient_funds"),
            ("failed", "credit_limit_exceeded"),
        ],
        key=str,
    )
    assert sorted(as_one_set) == sorted(op_ids)
    if postgres:
        # Written as one set, not savepoint by savepoint (which costs about ten statements each):
        # a dozen for the batch (its claim, reads, write, settlement, fan-out), a claim or two per message.
        assert sum(counts.values()) <= 12 + STATEMENTS_PER_PURCHASE * len(op_ids), counts
        assert counts["SAVEPOINT"] == 0, counts
    for op_id, (status, _) in outcomes.items():
        wanted = ["operation.succeeded", "product.purchased"] if status == "succeeded" else ["operation.failed"]
        assert event_types(org, op_id) == wanted
    owned = api.get(f"/v1/organizations/{org}/products", headers=owner.auth).json()["items"]
    bought = {op["result"]["product_id"] for op in done if op["status"] == "succeeded"}
    assert {p["id"] for p in owned} == bought
    assert all(p["state"] == "active" and p["expires_at"] for p in owned)
    assert balance(api, owner, org) == 0
    # Each operation's end is in the activity, by the member who asked, with its product.
    listed = api.get(f"/v1/organizations/{org}/activity", params={"limit": 100}, headers=owner.auth).json()["items"]
    ends = {row["operation_id"]: row for row in listed if row["kind"] in ("operation.succeeded", "operation.failed")}
    assert set(ends) == set(op_ids)
    for op in done:
        row = ends[op["id"]]
        assert row["kind"] == f"operation.{op['status']}"
        assert row["actor"]["type"] == "account" and row["actor"]["id"] == owner.id
        assert row["product_id"] == (op["result"] or {}).get("product_id")
