"""P2 (drain accepted purchases) and P4 (webhook deliveries) for bench/run, each against its baseline.

Both run in the benchmark's own event loop, on tenure's engine bound to the benchmark database.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from bench import load
from bench.relay_bench import PRICE, accept_purchases, record_purchases, send_purchases


@dataclass
class Context:
    database_url: str
    redis_url: str
    env: dict[str, str]
    logs: Path
    threads: int = 8
    rss: dict[str, list[float]] = field(default_factory=dict)  # process -> MiB after its load
    _accepted: int = 0


def make_organization(settings, funds: int) -> tuple[str, str]:
    """A new owner and their funded organization, through the API: (account id, organization id)."""
    from litestar.testing import TestClient

    from web.app import create_app

    with TestClient(create_app(settings)) as api:
        owner = api.post("/v1/accounts", json={"email": f"drain-{time.time_ns()}@bench.test", "name": "Bench"}).json()
        auth = {"Authorization": f"Bearer {owner['api_key']}"}
        org = api.post("/v1/organizations", json={"name": "Drain", "reseller": False}, headers=auth).json()
        topped = api.post(
            f"/v1/organizations/{org['id']}/funds", headers=auth, json={"amount": {"amount": funds, "currency": "EUR"}}
        )
        assert topped.status_code == 201, topped.text
    return owner["id"], org["id"]


async def _forget_unfinished() -> None:
    """Deletes the operations earlier paths left unfinished in the benchmark's database (P1 and
    P6 accept tens of thousands that no worker executes): a worker's batch claims pending
    operations of its kind whoever accepted them, so the drain would time them too."""
    from tables.operations import Operation

    await Operation.delete().where(Operation.status.is_in(["pending", "running"]))


async def _finished(org_id: str) -> int:
    from piccolo.query.functions.aggregate import Count

    from tables.operations import Operation

    row = (
        await Operation.select(Count(alias="n"))
        .where((Operation.organization_id == org_id) & Operation.status.is_in(["succeeded", "failed"]))
        .first()
    )
    return row["n"]


async def _wait(check, expected: int, what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while (done := await check()) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: {done} of {expected} after {timeout} s")
        await asyncio.sleep(0.05)


async def drain(ctx: Context, sender, count: int, settings) -> dict[str, float]:
    """P2: purchases/s drained by `tenure worker` 1 x threads, and a Dramatiq no-op actor's messages/s
    with the same processes and threads. The purchases' rows are committed first (accepting them
    is P1's work); each clock starts when the first message is sent (the worker already
    consumes) and stops when the last is done."""
    account_id, org_id = await asyncio.to_thread(make_organization, settings, 2 * PRICE * (count + 1))
    rds = redis.Redis.from_url(ctx.redis_url)
    rds.flushdb()  # P1's accepted purchases: nobody is to execute them
    await _forget_unfinished()  # nor are they claimed beside this drain's (a worker claims any pending ones)
    worker = load.start(
        [*load.TENURE, "worker", "--processes", "1", "--threads", str(ctx.threads)],
        {**ctx.env, "TENURE_WORKER_METRICS_PORT": str(load.free_port())},
        ctx.logs / "worker.log",
    )
    try:
        tag = time.time_ns()
        before = await _finished(org_id)  # the funds' top-up is an operation too
        await accept_purchases(sender, account_id, org_id, [f"warm-{tag}.fr"])
        await _wait(lambda: _finished(org_id), before + 1, "warm-up purchase", 120)  # the worker is up
        ids = await record_purchases(account_id, org_id, [f"drain-{tag}-{n:06d}.fr" for n in range(count)])
        started = time.monotonic()  # accepted (their rows: P1's work); sent and drained from here
        await send_purchases(sender, ids)
        await _wait(lambda: _finished(org_id), before + 1 + count, "purchases drained")
        tenure = count / (time.monotonic() - started)
        ctx.rss["worker"] = [load.rss_mib(p) for p in [worker.pid, *load.descendants(worker.pid)]]
    finally:
        load.stop(worker)

    from bench import noop

    rds.delete(noop.COUNTER)
    baseline = load.start(
        [load.sys.executable, "-m", "dramatiq", "bench.noop", "--processes", "1", "--threads", str(ctx.threads)],
        {**ctx.env, "BENCH_REDIS_URL": ctx.redis_url},
        ctx.logs / "noop.log",
    )
    try:
        counted = lambda: asyncio.to_thread(lambda: int(rds.get(noop.COUNTER) or 0))  # noqa: E731
        broker = noop.broker if noop.URL == ctx.redis_url else None
        if broker is None:
            raise RuntimeError("bench.noop reads BENCH_REDIS_URL: set it to the benchmark's Redis URL")
        noop.noop.send(0)
        await _wait(counted, 1, "warm-up no-op", 120)
        started = time.monotonic()
        for n in range(count):
            await asyncio.to_thread(noop.noop.send, n)
        await _wait(counted, count + 1, "no-ops drained")
        raw = count / (time.monotonic() - started)
    finally:
        load.stop(baseline)
        rds.close()
    return {"tenure": tenure, "baseline": raw}


@dataclass
class Hook:
    org_id: str
    endpoint_id: str


def make_hook(settings, receiver_url: str) -> Hook:
    from litestar.testing import TestClient

    from web.app import create_app

    with TestClient(create_app(settings)) as api:
        owner = api.post("/v1/accounts", json={"email": f"hooks-{time.time_ns()}@bench.test", "name": "Bench"}).json()
        auth = {"Authorization": f"Bearer {owner['api_key']}"}
        org = api.post("/v1/organizations", json={"name": "Hooks", "reseller": False}, headers=auth).json()
        hook = api.post(
            f"/v1/organizations/{org['id']}/webhook-endpoints",
            headers=auth,
            json={"url": receiver_url, "event_types": []},
        )
        assert hook.status_code == 201, hook.text
    return Hook(org["id"], hook.json()["id"])


async def _queue_deliveries(sender, hook: Hook, count: int) -> list[str]:
    from runtime.clock import clock
    from tables import events, webhooks
    from tables.engine import transaction
    from worker.webhooks.fanout import fan_out

    async with transaction():
        for n in range(count):
            await events.record("tier.changed", hook.org_id, clock.now(), data={"from": "A", "to": str(n)})
    while await fan_out(sender, organization_id=hook.org_id):
        pass
    rows = await webhooks.Delivery.select(webhooks.Delivery.id).where(
        (webhooks.Delivery.endpoint_id == hook.endpoint_id) & (webhooks.Delivery.status == "pending")
    )
    return [r["id"] for r in rows]


async def deliveries(ctx: Context, sender, hook: Hook, receiver_url: str, count: int) -> dict[str, float]:
    """P4: signed deliveries/s as a worker process sends them (`deliver_many` on one pinned client,
    DELIVERY_BATCH ids a message, `threads` messages at once) and the same number of POSTs by
    an httpx loop on one shared client at the same concurrency (threads x CONCURRENCY)."""
    from worker.queue import DELIVERY_BATCH
    from worker.webhooks.client import pinned_client
    from worker.webhooks.delivery import CONCURRENCY, deliver_many

    ids = await _queue_deliveries(sender, hook, count)
    redis.Redis.from_url(ctx.redis_url).delete("dramatiq:webhooks", "dramatiq:webhooks.msgs")
    batches = [ids[i : i + DELIVERY_BATCH] for i in range(0, len(ids), DELIVERY_BATCH)]
    threads = asyncio.Semaphore(ctx.threads)
    async with pinned_client(allow_private=True) as client:

        async def one_message(batch: list[str]) -> dict:
            async with threads:
                return await deliver_many(batch, client)

        started = time.monotonic()
        outcomes = [o for done in await asyncio.gather(*(one_message(b) for b in batches)) for o in done.values()]
        tenure = len(ids) / (time.monotonic() - started)
    delivered = sum(1 for verdict, _ in outcomes if verdict == "delivered")
    if delivered != len(ids):
        raise RuntimeError(f"P4: {delivered} of {len(ids)} deliveries delivered")

    body = b'{"type":"tier.changed","data":{"from":"A","to":"B"}}'
    gate = asyncio.Semaphore(ctx.threads * CONCURRENCY)
    from worker.webhooks.client import LIMITS

    async with httpx.AsyncClient(timeout=15, limits=LIMITS) as client:  # the same pool as tenure's

        async def post() -> int:
            async with gate:
                return (
                    await client.post(receiver_url, content=body, headers={"content-type": "application/json"})
                ).status_code

        started = time.monotonic()
        codes = await asyncio.gather(*(post() for _ in ids))
        raw = len(ids) / (time.monotonic() - started)
    if set(codes) != {200}:
        raise RuntimeError(f"P4 baseline: answers {set(codes)}")
    return {"tenure": tenure, "baseline": raw}
