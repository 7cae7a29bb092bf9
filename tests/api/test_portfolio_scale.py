"""100,000 products: lists read through indexes, and a CSV export streams in flat memory."""

from __future__ import annotations

import asyncio
import tracemalloc
from datetime import UTC, datetime

import anyio
import pytest

from tables import engine, keyset, products
from tables.products import Product
from tests.api import builders as b

N = 100_000
OTHERS = 5_000  # another organization's products, in the same table

_POSTGRES_BULK = """
INSERT INTO products (id, kind, name, organization, client, reseller, expires_at, autorenew, state,
                      name_key, created_at, updated_at)
SELECT {}::text || lpad(n::text, 8, '0'), 'domain', {}::text || n || '.test', {}::varchar, NULL, NULL,
       TIMESTAMPTZ '2027-01-01 00:00:00+00' + (n % 3650) * INTERVAL '1 day', n % 2 = 0,
       CASE WHEN n % 50 = 0 THEN 'grace' ELSE 'active' END, NULL,
       TIMESTAMPTZ '2026-01-01 00:00:00+00' + n * INTERVAL '1 second', TIMESTAMPTZ '2026-01-01 00:00:00+00'
FROM generate_series(1, {}::int) AS n
"""

_SQLITE_BULK = """
WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {})
INSERT INTO products (id, kind, name, organization, client, reseller, expires_at, autorenew, state,
                      name_key, created_at, updated_at)
SELECT {} || substr('0000000' || n, -8), 'domain', {} || n || '.test', {}, NULL, NULL,
       strftime('%Y-%m-%d %H:%M:%S', '2027-01-01', '+' || (n % 3650) || ' days') || '+00:00', n % 2 = 0,
       CASE WHEN n % 50 = 0 THEN 'grace' ELSE 'active' END, NULL,
       strftime('%Y-%m-%d %H:%M:%S', '2026-01-01', '+' || n || ' seconds') || '+00:00',
       '2026-01-01 00:00:00+00:00'
FROM seq
"""


async def _bulk(org: str, count: int, prefix: str) -> None:
    """`count` products for `org` in one set-based INSERT (seconds, not minutes)."""
    if engine.is_sqlite():
        await Product.raw(_SQLITE_BULK, count, f"prd_{prefix}", prefix, org)
    else:
        await Product.raw(_POSTGRES_BULK, f"prd_{prefix}", prefix, org, count)


async def _fill(org: str, other: str) -> None:
    await _bulk(org, N, "bulk")
    await _bulk(other, OTHERS, "other")
    await Product.raw("ANALYZE")


@pytest.fixture
def crowded(client):
    """An owner, their organization holding 100,000 products, and another organization's 5,000."""
    owner = b.person(client, "Bulk")
    org = b.organization(client, owner, name="Bulk Co")
    other = b.organization(client, b.person(client, "Other"), name="Other Co")
    asyncio.run(_fill(org, other))
    return owner, org


async def _plan(query) -> str:
    current = engine.current()
    if engine.is_sqlite():
        sql, args = query.querystrings[0].compile_string(engine_type="sqlite")
        rows = await current._run_in_new_connection("EXPLAIN QUERY PLAN " + sql, args)
        return "\n".join(row["detail"] for row in rows)
    sql, args = query.querystrings[0].compile_string(engine_type="postgres")
    rows = await current._run_in_new_connection("EXPLAIN " + sql, args)
    return "\n".join(row["QUERY PLAN"] for row in rows)


def _full_scans(plan: str) -> list[str]:
    """Plan lines that read the whole products table (or a whole index of it) instead of a range."""
    lines = plan.splitlines()
    if engine.is_sqlite():
        return [line for line in lines if "products" in line and not line.lstrip().startswith("SEARCH")]
    return [line for line in lines if "Seq Scan on products" in line]


WINDOW = products.Filter(
    "", expires_after=datetime(2027, 3, 1, tzinfo=UTC), expires_before=datetime(2027, 4, 1, tzinfo=UTC)
)

QUERIES = {
    "expiry window": (WINDOW, "id", False),
    "expiry window by expiry": (WINDOW, "expires_at", False),
    "expiry window by expiry, desc": (WINDOW, "expires_at", True),
    "state": (products.Filter("", state="grace"), "id", False),
    "by name": (products.Filter(""), "name", False),
    "by creation, desc": (products.Filter(""), "created_at", True),
}
# `q` (a part of the name) cannot use a b-tree: it reads the organization's products, through
# the organization's indexes when they are a small part of the table; when one organization
# holds nearly all of it, as here, a sequential scan is the cheaper plan and PostgreSQL takes it.


def test_every_list_query_of_one_organization_reads_through_an_index(crowded):
    _, org = crowded
    full_scans = {}
    for name, (template, sort, descending) in QUERIES.items():
        wanted = products.Filter(**{**template.__dict__, "organization_id": org})
        order = keyset.Keyset(products.SORTS[sort], Product.id, descending)
        plan = asyncio.run(_plan(order.apply(wanted.select()).limit(101)))
        if _full_scans(plan):
            full_scans[name] = plan

    assert full_scans == {}


async def _drain(app, path: str, headers: dict[str, str]) -> tuple[int, int, int]:
    """Calls the ASGI app and counts the streamed body without keeping it: (status, bytes, lines)."""
    status, size, lines = 0, 0, 0
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "state": {},
    }
    requested = False
    finished = anyio.Event()

    async def receive():
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await finished.wait()  # as a server does: the client goes once the whole answer is sent
        return {"type": "http.disconnect"}

    async def send(message):
        nonlocal status, size, lines
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body = message.get("body", b"")
            size += len(body)
            lines += body.count(b"\n")
            if not message.get("more_body", False):
                finished.set()

    await app(scope, receive, send)
    return status, size, lines


def test_a_csv_export_of_100000_products_streams_in_flat_memory(client, crowded):
    owner, org = crowded
    headers = {**owner.auth, "Accept": "text/csv", "Host": "testserver"}
    with client.portal() as portal:
        portal.call(_drain, client.app, f"/v1/organizations/{org}/products?state=grace", headers)  # warm up
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            base, _ = tracemalloc.get_traced_memory()
            status, size, lines = portal.call(
                _drain, client.app, f"/v1/organizations/{org}/products?sort=expires_at", headers
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert status == 200
    assert lines == N + 1  # the header and every product, whatever `limit` would allow
    assert size > 8_000_000
    print(f"export {size} bytes, peak {peak - base} bytes")
    assert peak - base < size / 2, f"peak {peak - base} bytes for an export of {size} bytes"
