"""Helpers for the process-level tests: accepting batches, driving the relay, checking effects.

Builders (tests.api.builders) and flows (tests.integration.flows) are reused as they are;
what is here is only what a batch of operations across processes needs.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import asyncpg

from tables.events import Event
from tables.ledger import LedgerEntry
from tables.operations import Operation
from tables.products import Product
from tests.api.builders import Person
from tests.integration.flows import FINISHED, balance, buy, db, ledger_sums
from worker.queue import Sender
from worker.relay import relay


def statuses(org: str, kind: str = "purchase") -> Counter:
    """How many of the organization's operations of `kind` are in each status."""
    rows = db(
        Operation.select(Operation.status).where((Operation.organization_id == org) & (Operation.kind == kind)).run()
    )
    return Counter(row["status"] for row in rows)


def wait_until_finished(
    org: str,
    expected: int,
    *,
    timeout: float,
    alive: Callable[[], str | None] = lambda: None,
    each_tick: Callable[[], object] | None = None,
    tick_s: float = 0.5,
) -> Counter:
    """Polls until `expected` purchases of `org` are finished, calling `each_tick()` first each time.

    `alive()` returns a failure description when a process the test relies on has died.
    Fails with the status counts when `timeout` passes first.
    """
    deadline = time.monotonic() + timeout
    while True:
        if each_tick is not None:
            each_tick()
        counts = statuses(org)
        if sum(counts[s] for s in FINISHED) >= expected:
            return counts
        problem = alive()
        if problem:
            raise AssertionError(f"{problem}; operations so far: {dict(counts)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"only {dict(counts)} of {expected} operations after {timeout}s")
        time.sleep(tick_s)


@contextmanager
def balance_held(database_url: str, org: str) -> Iterator[None]:
    """The organization's balance row locked by a transaction of the test's own until the block
    ends: a worker's batch charging it waits there, claimed and written but not committed, so that
    a test can kill the worker at that known point rather than between two polls."""
    loop = asyncio.new_event_loop()
    lock = loop.run_until_complete(asyncpg.connect(database_url))
    try:
        loop.run_until_complete(lock.execute("BEGIN"))
        loop.run_until_complete(lock.execute("SELECT 1 FROM balances WHERE organization_id = $1 FOR UPDATE", org))
        yield
    finally:
        loop.run_until_complete(lock.close())
        loop.close()


def relay_once(sender: Sender, stall_seconds: int) -> Callable[[], int]:
    """One relay tick run from this (sync) test process, as the scheduler would run it."""
    return lambda: asyncio.run(relay(sender, stall_seconds))


def accept_purchases(
    api, owner: Person, org: str, names: list[str], *, after_each: Callable[[int], None] | None = None
) -> list[str]:
    """Buys one domain per name through the API; every answer must be 202. Returns operation ids."""
    op_ids = []
    for index, name in enumerate(names):
        answer = buy(api, owner, org, name)
        assert answer.status_code == 202, (name, answer.status_code, answer.text)
        op_ids.append(answer.json()["id"])
        if after_each is not None:
            after_each(index)
    assert len(set(op_ids)) == len(names)
    return op_ids


def assert_each_purchase_done_once(
    api, owner: Person, org: str, op_ids: list[str], names: list[str], funds: int
) -> dict[int, int]:
    """Every operation succeeded and every effect of it happened exactly once.

    Returns how many revenue entries there are at each price (the caller judges the prices).
    """
    ops = db(
        Operation.select(Operation.id, Operation.status, Operation.result, Operation.product_id)
        .where((Operation.organization_id == org) & (Operation.kind == "purchase"))
        .output(load_json=True)
        .run()
    )
    by_id = {op["id"]: op for op in ops}
    assert set(by_id) == set(op_ids), "operations appeared or vanished"
    not_done = {op["id"]: op["status"] for op in ops if op["status"] != "succeeded"}
    assert not not_done, f"{len(not_done)} operations did not succeed: {list(not_done.items())[:5]}"

    products = db(Product.select(Product.id, Product.name).where(Product.organization == org).run())
    assert len(products) == len(names), f"{len(products)} products for {len(names)} purchases"
    assert sorted(p["name"] for p in products) == sorted(names)
    assert {p["id"] for p in products} == {op["product_id"] for op in ops}

    revenue = db(
        LedgerEntry.select(LedgerEntry.operation_id, LedgerEntry.amount)
        .where((LedgerEntry.organization_id == org) & (LedgerEntry.book == "revenue"))
        .run()
    )
    per_op = Counter(entry["operation_id"] for entry in revenue)
    assert len(revenue) == len(op_ids), f"{len(revenue)} revenue entries for {len(op_ids)} operations"
    assert set(per_op) == set(op_ids) and set(per_op.values()) == {1}, (
        f"charged twice: {[op for op, n in per_op.items() if n > 1][:5]}"
    )
    for entry in revenue:
        assert entry["amount"] == by_id[entry["operation_id"]]["result"]["price"]["amount"], entry
    charged = sum(entry["amount"] for entry in revenue)
    assert balance(api, owner, org) == funds - charged
    assert ledger_sums() == {"EUR": 0}

    events = db(
        Event.select(Event.type, Event.operation_id)
        .where((Event.organization_id == org) & Event.operation_id.is_in(op_ids))
        .run()
    )
    for kind in ("product.purchased", "operation.succeeded"):
        of_kind = Counter(e["operation_id"] for e in events if e["type"] == kind)
        assert sum(of_kind.values()) == len(op_ids), f"{sum(of_kind.values())} {kind} events"
        assert set(of_kind) == set(op_ids) and set(of_kind.values()) == {1}, kind
    assert not [e for e in events if e["type"] == "operation.failed"]
    return dict(Counter(entry["amount"] for entry in revenue))
