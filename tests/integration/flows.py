"""Helpers for operation tests: wait for outcomes, read the ledger, buy and renew."""

from __future__ import annotations

import asyncio
import time

from tables.ledger import LedgerEntry
from tables.products import Product
from tests.api.builders import Person

FINISHED = {"succeeded", "failed"}


def db(coro):
    """Runs a query from a sync test (its own short-lived loop)."""
    return asyncio.run(coro)


def wait_done(client, who: Person, op_id: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        op = client.get(f"/v1/operations/{op_id}", headers=who.auth).json()
        if op["status"] in FINISHED:
            return op
        if time.monotonic() > deadline:
            raise AssertionError(f"operation {op_id} still {op['status']} after {timeout}s")
        time.sleep(0.05)


def wait_all(client, who: Person, op_ids: list[str], timeout: float = 60.0) -> list[dict]:
    return [wait_done(client, who, op_id, timeout) for op_id in op_ids]


def buy(
    client,
    who: Person,
    org: str,
    name: str,
    *,
    kind: str = "domain",
    years: int = 1,
    payment_method: str = "prepaid",
    client_id: str | None = None,
    key: str | None = None,
):
    body = {"kind": kind, "name": name, "years": years, "payment_method": payment_method}
    if client_id:
        body["client"] = client_id
    headers = {**who.auth, **({"Idempotency-Key": key} if key else {})}
    return client.post(f"/v1/organizations/{org}/purchases", json=body, headers=headers)


def renew(
    client,
    who: Person,
    product: dict,
    *,
    years: int = 1,
    payment_method: str = "prepaid",
    guard: str | None = None,
    key: str | None = None,
):
    body = {"years": years, "payment_method": payment_method, "current_expires_at": guard or product["expires_at"]}
    headers = {**who.auth, **({"Idempotency-Key": key} if key else {})}
    return client.post(f"/v1/products/{product['id']}/renewals", json=body, headers=headers)


def balance(client, who: Person, org: str) -> int:
    return client.get(f"/v1/organizations/{org}/billing", headers=who.auth).json()["balance"]["amount"]


def ledger_sums() -> dict[str, int]:
    """Sum of every ledger entry per currency: zero when the ledger balances."""
    rows = db(LedgerEntry.select(LedgerEntry.currency, LedgerEntry.amount).run())
    sums: dict[str, int] = {}
    for row in rows:
        sums[row["currency"]] = sums.get(row["currency"], 0) + row["amount"]
    return sums


def charges_for(org: str) -> list[int]:
    rows = db(
        LedgerEntry.select(LedgerEntry.amount)
        .where((LedgerEntry.organization_id == org) & (LedgerEntry.book == "revenue"))
        .run()
    )
    return [r["amount"] for r in rows]


def product_count(org: str) -> int:
    return db(Product.count().where(Product.organization == org).run())
