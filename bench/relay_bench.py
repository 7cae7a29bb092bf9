"""Relay benchmark: a backlog of accepted purchases drains without duplicate messages.

On a dedicated PostgreSQL database and Redis DB:

1. fresh schema (`tenure migrate`), one owner and one funded organization made through
   the API;
2. `--count` purchases (default 50,000) accepted as the web accepts them, without the HTTP
   part: each operation row committed (the outbox, in batches of 1,000), then its message
   sent with tenure's `Sender` (not measured);
3. `--workers` (2) `tenure worker` processes (`--threads` each) drain the backlog while the
   relay runs every 5 s in this process, as `tenure scheduler` runs it
   (`worker.relay.relay`, `--stall` seconds, 60 by default as in production);
4. once every operation is finished: messages sent (accepted + sent again by the relay)
   against operations, the duplicate share, deliveries that started an operation
   (`sum(attempts)`), and the drain rate.

The exit status is 1 when the relay sent 1 % of the operations or more again, or when an
operation did not succeed. `--plain-stall` runs the relay without its queue rule (every
operation unfinished `--stall` seconds after its send is sent again, the rule before it),
for comparison.

    .venv/bin/python -m bench.relay_bench [--database-url URL] [--redis-url URL]
        [--count 50000] [--workers 2] [--threads 8] [--stall 60] [--plain-stall]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
from rich.console import Console
from rich.table import Table

from bench.sweep_bench import check_targets, ensure_database, fresh_schema, new_key
from rules.operations import OperationKind

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
MAX_DUPLICATE_SHARE = 0.01
PRICE = 1500  # one year of a domain, tier A
INSERT_BATCH = 1_000
RELAY_INTERVAL_S = 5  # as worker.scheduler runs it
TENURE = str(Path(sys.executable).with_name("tenure"))
REPO = Path(__file__).resolve().parent.parent

console = Console(width=None if sys.stdout.isatty() else 140)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_organization(settings, funds: int) -> tuple[str, str]:
    """An owner and a funded organization, through the API: (account id, organization id)."""
    from litestar.testing import TestClient

    from web.app import create_app

    with TestClient(create_app(settings)) as api:
        owner = api.post("/v1/accounts", json={"email": "bench@example.test", "name": "Bench"}).json()
        auth = {"Authorization": f"Bearer {owner['api_key']}"}
        org = api.post("/v1/organizations", json={"name": "Bench", "reseller": False}, headers=auth).json()
        funds = api.post(
            f"/v1/organizations/{org['id']}/funds", headers=auth, json={"amount": {"amount": funds, "currency": "EUR"}}
        )
        assert funds.status_code == 201, funds.text
    return owner["id"], org["id"]


async def accept_purchases(sender, account_id: str, org_id: str, names: list[str]) -> list[str]:
    """As the web accepts purchases, minus HTTP: rows first (the outbox), then their messages as
    `web.outbox` sends them. Answers the operations' ids."""
    ids = await record_purchases(account_id, org_id, names)
    await send_purchases(sender, ids)
    return ids


async def record_purchases(account_id: str, org_id: str, names: list[str]) -> list[str]:
    """The accepted purchases' rows, committed as the web commits them (no message sent)."""
    from runtime.clock import clock
    from tables import operations
    from tables.engine import transaction
    from tables.operation_params import PurchaseParams
    from tables.operations import Operation

    ids: list[str] = []
    for first in range(0, len(names), INSERT_BATCH):
        now = clock.now()
        rows = [
            operations.new_row(
                OperationKind.PURCHASE,
                org_id,
                now,
                account_id=account_id,
                enqueued_at=now,
                params=PurchaseParams(kind="domain", name=name, years=1, payment_method="prepaid"),
            )
            for name in names[first : first + INSERT_BATCH]
        ]
        async with transaction():
            await Operation.insert(*[Operation(**row) for row in rows])
        ids += [row["id"] for row in rows]
    return ids


async def send_purchases(sender, ids: list[str]) -> None:
    """The messages of accepted purchases, as `web.outbox` sends them: a kind's operations by
    OPERATION_BATCH a message, one pipeline per outbox batch."""
    from web.outbox import MAX_BATCH
    from worker.queue import operation_messages

    for first in range(0, len(ids), MAX_BATCH):
        messages = operation_messages([(OperationKind.PURCHASE, op_id) for op_id in ids[first : first + MAX_BATCH]])
        if await asyncio.to_thread(sender.send_many, messages):
            raise SystemExit("the broker refused a message while accepting")


async def statuses() -> dict[str, int]:
    from piccolo.query.functions.aggregate import Count

    from tables.operations import Operation

    rows = (
        await Operation.select(Operation.status, Count(alias="n"))
        .where(Operation.kind == OperationKind.PURCHASE)
        .group_by(Operation.status)
    )
    return {row["status"]: row["n"] for row in rows}


async def attempts_total() -> int:
    from piccolo.query.functions.aggregate import Sum

    from tables.operations import Operation

    return (
        await Operation.select(Sum(Operation.attempts, alias="n"))
        .where(Operation.kind == OperationKind.PURCHASE)
        .first()
    )["n"] or 0


def start_workers(args, database_url: str, redis_url: str, logs: Path) -> list[subprocess.Popen]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    env.update(
        TENURE_DATABASE_URL=database_url,
        TENURE_BROKER_URL=redis_url,
        TENURE_LOG_LEVEL="WARNING",
        TENURE_SECRET_KEY=new_key(),
        PYTHONUNBUFFERED="1",
    )
    procs = []
    for n in range(args.workers):
        log = open(logs / f"worker-{n}.log", "wb")
        procs.append(
            subprocess.Popen(
                [TENURE, "worker", "--processes", "1", "--threads", str(args.threads)],
                cwd=REPO,
                env={**env, "TENURE_WORKER_METRICS_PORT": str(free_port())},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return procs


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the main process only (see deploy/README.md)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


async def drain(args, sender, procs: list[subprocess.Popen]) -> tuple[float, int, int]:
    """Relay ticks until every operation is finished: (seconds, relay ticks, messages re-sent)."""
    import worker.relay
    from worker.execution import Bounds

    if args.plain_stall:
        worker.relay._oldest_waiting = lambda sender: None  # the rule before the queue check
    started = time.monotonic()
    resent = ticks = 0
    next_tick = started + RELAY_INTERVAL_S
    last_report = started
    while True:
        counts = await statuses()
        if counts.get("pending", 0) + counts.get("running", 0) == 0:
            return time.monotonic() - started, ticks, resent
        if dead := [p.pid for p in procs if p.poll() is not None]:
            raise SystemExit(f"worker processes {dead} died; see their logs")
        if time.monotonic() > started + args.timeout:
            raise SystemExit(f"not drained after {args.timeout} s: {counts}")
        if time.monotonic() >= next_tick:
            resent += await worker.relay.relay(sender, args.stall, Bounds())
            ticks += 1
            next_tick += RELAY_INTERVAL_S
        if time.monotonic() - last_report >= 15:
            last_report = time.monotonic()
            console.print(f"  {time.monotonic() - started:6.0f} s  {counts}  re-sent so far {resent}")
        await asyncio.sleep(0.5)


async def run(args) -> int:
    from runtime.settings import Settings
    from tables import engine
    from worker.broker import make_broker
    from worker.queue import Sender

    name, _ = check_targets(args.database_url, args.redis_url)
    await ensure_database(args.database_url, name)
    await fresh_schema(args.database_url)
    redis.Redis.from_url(args.redis_url).flushdb()
    settings = Settings(database_url=args.database_url, broker_url=args.redis_url)
    account_id, org_id = await asyncio.to_thread(make_organization, settings, 2 * PRICE * args.count)

    engine.bind(engine.for_url(args.database_url))
    await engine.start_pool(4)
    sender = Sender(make_broker(settings))
    procs: list[subprocess.Popen] = []
    try:
        accepting = time.monotonic()
        await accept_purchases(sender, account_id, org_id, [f"backlog-{n:06d}.fr" for n in range(args.count)])
        accept_s = time.monotonic() - accepting
        console.print(
            f"accepted {args.count:,} purchases in {accept_s:.1f} s; "
            f"{args.workers} workers × {args.threads} threads drain them"
            f"{' (relay: plain stall rule)' if args.plain_stall else ''}"
        )
        logs = Path(args.logs)
        logs.mkdir(parents=True, exist_ok=True)
        procs = start_workers(args, args.database_url, args.redis_url, logs)
        drain_s, ticks, resent = await drain(args, sender, procs)
        counts = await statuses()
        attempts = await attempts_total()
    finally:
        stop_workers(procs)
        sender.broker.close()
        await engine.close_pool()

    sent = args.count + resent
    share = resent / args.count
    table = Table(title="relay_bench: backlog drained")
    for column in (
        "operations",
        "messages sent",
        "sent again",
        "duplicates",
        "deliveries started",
        "drain",
        "drain rate",
        "relay ticks",
        "statuses",
    ):
        table.add_column(column, justify="right")
    table.add_row(
        f"{args.count:,}",
        f"{sent:,}",
        f"{resent:,}",
        f"{share:.2%}",
        f"{attempts:,}",
        f"{drain_s:.1f} s",
        f"{args.count / drain_s:.0f} ops/s",
        str(ticks),
        ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
    )
    console.print(table)
    ok = share < MAX_DUPLICATE_SHARE and counts == {"succeeded": args.count}
    console.print(
        f"duplicates {share:.2%} {'<' if share < MAX_DUPLICATE_SHARE else '>='} "
        f"{MAX_DUPLICATE_SHARE:.0%}; every operation succeeded: {counts == {'succeeded': args.count}}"
    )
    return 0 if ok else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.relay_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("TENURE_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("TENURE_BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--count", type=int, default=50_000, help="purchases in the backlog")
    parser.add_argument("--workers", type=int, default=2, help="`tenure worker` processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker")
    parser.add_argument("--stall", type=int, default=60, help="the relay's stall seconds")
    parser.add_argument(
        "--plain-stall", action="store_true", help="relay without the queue rule (the rule before it), for comparison"
    )
    parser.add_argument("--timeout", type=float, default=3600, help="give up after this many seconds")
    parser.add_argument("--logs", default="var/relay_bench", help="where the workers' logs go")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
