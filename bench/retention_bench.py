"""Retention benchmark: purging expired rows while `tenure web` accepts purchases.

On a dedicated PostgreSQL database and Redis DB:

1. fresh schema, `tenure migrate`; `--rows` expired rows (default 1,000,000) spread over
   the tables retention deletes, inserted with set-based SQL (`INSERT ... SELECT
   generate_series`, not measured): finished operations 100 days old (25%), their events
   fanned out 40 days ago (25%), finished deliveries of those events last attempted 40
   days ago (20%) with their attempts (20%), inbound webhook ids 10 days old (10%); plus
   `--rows`/10 operations 2 days old whose idempotency keys are due to be cleared, and
   `--rows`/10 rows kept (young) in every table. Then `VACUUM ANALYZE` and `CHECKPOINT`;
2. `tenure web` (one uvicorn process) is started on the database and Redis DB, and an
   HTTP load generator (a separate process: an httpx async loop of `--connections`
   concurrent POSTs, loopback only, bounded in time and count) posts
   `POST /v1/organizations/{org}/purchases` (a new mailbox each, no worker: ingress only);
3. after a warm-up, the purge (`worker.retention.run`, batches of `--batch-size`) runs in
   its own process, which is stopped and continued (SIGSTOP/SIGCONT) every `--window`
   seconds until it is done: windows with and without the purge alternate, so the drift
   of a shared machine's load falls on both alike (the first half second of each window,
   when a statement sent before a stop may still run, is not counted);
4. checked: every expired row gone, every young row kept, the counts the run reported.

It prints the purge's rows/s (over the time it was running) and the ingress rate during
the purge as a ratio of the rate without it (goal at least 0.8; exit status 1 below it),
with p99 latencies.

    .venv/bin/python -m bench.retention_bench [--database-url URL] [--redis-url URL]
        [--rows 1000000] [--batch-size 2000] [--connections 16] [--window 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import asyncpg
import httpx
import structlog
from rich.console import Console
from rich.table import Table

from bench.ingress_bench import free_port, serve, stop
from bench.sweep_bench import check_targets, ensure_database, fresh_schema, new_key

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
GOAL = 0.8
ORG = "org_retention_bench"
REPO = Path(__file__).resolve().parent.parent
# Share of --rows per table (the expired rows to delete).
SPREAD = {"operations": 0.25, "events": 0.25, "deliveries": 0.20, "delivery_attempts": 0.20, "inbound_messages": 0.10}
MAX_LOAD_S = 3600  # the load generator stops by itself after this long, whatever happens

console = Console(width=None if sys.stdout.isatty() else 140)


# --- data --------------------------------------------------------------------------------


def plan(rows: int) -> dict[str, int]:
    counts = {table: int(rows * share) for table, share in SPREAD.items()}
    counts["operations"] += rows - sum(counts.values())
    counts["deliveries"] = min(counts["deliveries"], counts["events"])
    counts["operations"] += rows - sum(counts.values())
    return counts


LOAD_SQL = [
    # finished operations, 100 days old (their keys cleared long ago), and young ones
    (
        "operations",
        """
        INSERT INTO operations (id, kind, status, organization_id, params, attempts, created_at, finished_at)
        SELECT {prefix}::text || lpad(g::text, 10, '0'), 'purchase', 'succeeded', {org}::text, '{}', 1,
               {now}::timestamptz - make_interval(days => {days}::int) + g * interval '1 ms',
               {now}::timestamptz - make_interval(days => {days}::int) + g * interval '1 ms' + interval '1 s'
        FROM generate_series(1, {n}::int) AS g""",
    ),
    # their events, fanned out 40 days ago, and young ones
    (
        "events",
        """
        INSERT INTO events (id, type, organization_id, operation_id, data, created_at, dispatched_at)
        SELECT {prefix}::text || lpad(g::text, 10, '0'), 'operation.succeeded', {org}::text,
               CASE WHEN {prefix}::text = 'evt_old_' THEN 'op_old_' ELSE 'op_new_' END || lpad(g::text, 10, '0'),
               '{}', {now}::timestamptz - make_interval(days => {days}::int) + g * interval '1 ms',
               {now}::timestamptz - make_interval(days => {days}::int) + g * interval '1 ms'
        FROM generate_series(1, {n}::int) AS g""",
    ),
    # one finished delivery per event (the first ones), last attempted with the event
    (
        "deliveries",
        """
        INSERT INTO deliveries (id, endpoint_id, event_id, delivery_key, status, attempts, created_at, updated_at)
        SELECT {prefix}::text || lpad(g::text, 10, '0'), 'whe_bench',
               CASE WHEN {prefix}::text = 'dlv_old_' THEN 'evt_old_' ELSE 'evt_new_' END || lpad(g::text, 10, '0'),
               'whe_bench:' || {prefix}::text || g, 'succeeded', 1,
               {now}::timestamptz - make_interval(days => {days}::int) + g * interval '1 ms',
               {now}::timestamptz - make_interval(days => {days}::int) + g * interval '1 ms'
        FROM generate_series(1, {n}::int) AS g""",
    ),
    # attempts spread over the deliveries
    (
        "delivery_attempts",
        """
        INSERT INTO delivery_attempts (id, delivery_id, attempted_at, status_code, duration_ms, response_excerpt)
        SELECT {prefix}::text || lpad(g::text, 10, '0'),
               CASE WHEN {prefix}::text = 'att_old_' THEN 'dlv_old_' ELSE 'dlv_new_' END
                   || lpad((1 + (g - 1) % {parents}::int)::text, 10, '0'),
               {now}::timestamptz - make_interval(days => {days}::int) + g * interval '1 ms', 200, 12, '{"ok":true}'
        FROM generate_series(1, {n}::int) AS g""",
    ),
    (
        "inbound_messages",
        """
        INSERT INTO inbound_messages (message_key, operation_id, received_at)
        SELECT {org}::text || ':' || {prefix}::text || g, 'op_new_' || lpad(g::text, 10, '0'),
               {now}::timestamptz - make_interval(days => {days}::int) + g * interval '1 ms'
        FROM generate_series(1, {n}::int) AS g""",
    ),
]
KEYS_SQL = """
    INSERT INTO operations (id, kind, status, organization_id, idem_key, params, attempts, created_at, finished_at)
    SELECT 'op_key_' || lpad(g::text, 10, '0'), 'topup', 'succeeded', {org}::text, {org}::text || ':key-' || g, '{}', 0,
           {now}::timestamptz - interval '2 days' + g * interval '1 ms',
           {now}::timestamptz - interval '2 days' + g * interval '1 ms'
    FROM generate_series(1, {n}::int) AS g"""


async def execute(conn: asyncpg.Connection, sql: str, **values) -> None:
    """Runs `sql` with its `{name}` placeholders bound as asyncpg's $1, $2, ..."""
    names: list[str] = []

    def number(match: re.Match) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    query = re.sub(r"\{(\w+)\}", number, sql)
    await conn.execute(query, *[values[name] for name in names])


OLD_DAYS = {"operations": 100, "events": 40, "deliveries": 40, "delivery_attempts": 40, "inbound_messages": 10}
PREFIX = {
    "operations": "op",
    "events": "evt",
    "deliveries": "dlv",
    "delivery_attempts": "att",
    "inbound_messages": "wh",
}


@dataclass
class Dataset:
    now: datetime
    expired: dict[str, int]
    young: int
    keys: int
    load_s: float
    mb: float


async def load(conn: asyncpg.Connection, rows: int, now: datetime) -> Dataset:
    started = time.perf_counter()
    expired = plan(rows)
    young = max(1, rows // 10)
    # The rows name it (foreign keys); deliveries name their events, attempts their deliveries.
    await conn.execute(
        "INSERT INTO organizations (id, name, is_reseller, currency, created_at) VALUES ($1, 'Bench', false, 'EUR', $2)",
        ORG,
        now,
    )
    for table, sql in LOAD_SQL:
        # the expired rows, then the young ones (an hour old, kept); attempts go round the deliveries
        await execute(
            conn,
            sql,
            org=ORG,
            now=now,
            prefix=f"{PREFIX[table]}_old_",
            days=OLD_DAYS[table],
            n=expired[table],
            parents=expired["deliveries"],
        )
        await execute(
            conn,
            sql.replace("make_interval(days => {days}::int)", "make_interval(days => {days}::int, hours => 1)"),
            org=ORG,
            now=now,
            prefix=f"{PREFIX[table]}_new_",
            days=0,
            n=young,
            parents=young,
        )
    keys = max(1, rows // 10)
    await execute(conn, KEYS_SQL, org=ORG, now=now, n=keys)
    for table in (*SPREAD, "organizations"):
        await conn.execute(f"VACUUM ANALYZE {table}")
    await conn.execute("CHECKPOINT")
    mb = sum([await conn.fetchval(f"SELECT pg_total_relation_size('{t}')") for t in SPREAD]) / 2**20
    return Dataset(now, expired, young, keys, time.perf_counter() - started, mb)


async def remaining(conn: asyncpg.Connection) -> dict[str, tuple[int, int]]:
    """(expired left, young left) per table, and the keys left to clear."""
    found = {}
    for table in SPREAD:
        key = "message_key" if table == "inbound_messages" else "id"
        old = f"{PREFIX[table]}_old_"
        found[table] = (
            await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {key} LIKE '%' || $1 || '%'", old),
            await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE {key} LIKE '%' || $1 || '%'", f"{PREFIX[table]}_new_"
            ),
        )
    found["idempotency_keys"] = (
        await conn.fetchval("SELECT count(*) FROM operations WHERE id LIKE 'op_key_%' AND idem_key IS NOT NULL"),
        await conn.fetchval("SELECT count(*) FROM operations WHERE id LIKE 'op_key_%'"),
    )
    return found


# --- the load generator (a separate process) ----------------------------------------------


async def generate_load(url: str, api_key: str, connections: int, max_requests: int, out: str) -> None:
    """POSTs purchases until SIGTERM, `max_requests` or MAX_LOAD_S; writes (end time, latency) pairs."""
    host = urlparse(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"the load generator only posts to loopback, not {host}")
    stop_at = time.monotonic() + MAX_LOAD_S
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    done: list[tuple[float, float]] = []
    errors = 0
    sent = 0
    headers = {"Authorization": f"Bearer {api_key}"}
    rng = random.Random()

    async def one_connection(client: httpx.AsyncClient) -> None:
        nonlocal errors, sent
        while not stopping.is_set() and sent < max_requests and time.monotonic() < stop_at:
            sent += 1
            body = {
                "kind": "mailbox",
                "name": f"m{sent}-{rng.randrange(10**9)}@bench.test",
                "years": 1,
                "payment_method": "invoice",
            }
            began = time.perf_counter()
            try:
                answer = await client.post(url, json=body, headers=headers)
                ok = answer.status_code == 202
            except httpx.HTTPError:
                ok = False
            if ok:
                done.append((time.time(), time.perf_counter() - began))
            else:
                errors += 1

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await asyncio.gather(*(one_connection(client) for _ in range(connections)))
    Path(out).write_text(json.dumps({"done": done, "errors": errors}))


# --- measurement -------------------------------------------------------------------------


@dataclass
class Window:
    label: str
    start: float
    end: float
    requests: int = 0
    p99_ms: float = 0.0

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Result:
    dataset: Dataset
    deleted: dict[str, int]
    purge_s: float
    windows: list[Window] = field(default_factory=list)
    errors: int = 0
    left: dict[str, tuple[int, int]] = field(default_factory=dict)


def fill(window: Window, done: list[tuple[float, float]]) -> None:
    window.start = min(window.start + GUARD_S, window.end)
    latencies = [lat for at, lat in done if window.start <= at < window.end]
    window.requests = len(latencies)
    if len(latencies) >= 2:
        window.p99_ms = statistics.quantiles(latencies, n=100)[98] * 1000


async def purge(database_url: str, batch_size: int, out: str) -> None:
    """The purge's own process: one retention run; writes what it deleted."""
    from runtime.settings import Settings
    from tables import engine as tenure_engine
    from worker import retention

    settings = Settings(database_url=database_url, retention_batch_size=batch_size)
    tenure_engine.bind(tenure_engine.for_url(database_url))
    await tenure_engine.start_pool(2)
    try:
        deleted = await retention.run(settings)
    finally:
        await tenure_engine.close_pool()
    Path(out).write_text(json.dumps(deleted))


GUARD_S = 0.5  # not counted at the start of a window


def alternate(purger: subprocess.Popen, window_s: float) -> list[Window]:
    """Purge on / off windows of `window_s` until the purge process ends (it starts running)."""
    windows: list[Window] = []
    running = True
    while True:
        began = time.time()
        try:
            purger.wait(timeout=window_s)
            finished = True
        except subprocess.TimeoutExpired:
            finished = False
        windows.append(Window("during purge" if running else "without purge", began, time.time()))
        if finished:
            break
        purger.send_signal(signal.SIGSTOP if running else signal.SIGCONT)
        running = not running
    return windows


def run(args) -> int:
    name, _ = check_targets(args.database_url, args.redis_url)
    asyncio.run(ensure_database(args.database_url, name))
    asyncio.run(fresh_schema(args.database_url))
    subprocess.run(["redis-cli", "-u", args.redis_url, "flushdb"], check=True, capture_output=True)
    env = {
        "TENURE_SECRET_KEY": new_key(),
        **os.environ,
        "TENURE_DATABASE_URL": args.database_url,
        "TENURE_BROKER_URL": args.redis_url,
        "TENURE_LOG_LEVEL": "WARNING",
    }
    port = free_port()
    server = serve([sys.executable, "-m", "command.main", "web", "--port", str(port)], env, port)
    load_out = f"/tmp/retention_bench_load_{os.getpid()}.json"
    purge_out = f"/tmp/retention_bench_purge_{os.getpid()}.json"
    loader = purger = None
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            account = client.post("/v1/accounts", json={"email": "bench@bench.test", "name": "Bench"}).json()
            auth = {"Authorization": f"Bearer {account['api_key']}"}
            org = client.post("/v1/organizations", json={"name": "Bench", "reseller": False}, headers=auth).json()
        now = datetime.now(UTC).replace(microsecond=0)

        async def prepare() -> Dataset:
            conn = await asyncpg.connect(args.database_url)
            try:
                return await load(conn, args.rows, now)
            finally:
                await conn.close()

        dataset = asyncio.run(prepare())
        console.print(
            f"loaded {args.rows:,} expired rows (+ {dataset.young:,} young per table, "
            f"{dataset.keys:,} keys to clear) in {dataset.load_s:.1f} s, {dataset.mb:,.0f} MB"
        )
        url = f"http://127.0.0.1:{port}/v1/organizations/{org['id']}/purchases"
        loader = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.retention_bench",
                "--load",
                url,
                account["api_key"],
                str(args.connections),
                str(args.max_requests),
                load_out,
            ],
            cwd=REPO,
            env=env,
        )
        time.sleep(3)  # warm-up: connections, caches
        first = Window("without purge", time.time(), time.time() + args.window)
        time.sleep(args.window)  # so that both kinds of window exist even for a short purge
        purger = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.retention_bench",
                "--purge",
                args.database_url,
                str(args.batch_size),
                purge_out,
            ],
            cwd=REPO,
            env=env,
        )
        windows = [first, *alternate(purger, args.window)]
        if windows[-1].label == "during purge":  # end on a window without it too
            time.sleep(args.window)
            windows.append(Window("without purge", windows[-1].end, time.time()))
        loader.send_signal(signal.SIGTERM)
        loader.wait(timeout=60)
        loaded = json.loads(Path(load_out).read_text())
        for window in windows:
            fill(window, loaded["done"])
        deleted = json.loads(Path(purge_out).read_text())
        purge_s = sum(w.end - w.start for w in windows if w.label == "during purge")

        async def check() -> dict:
            conn = await asyncpg.connect(args.database_url)
            try:
                return await remaining(conn)
            finally:
                await conn.close()

        result = Result(dataset, deleted, purge_s, windows, loaded["errors"], asyncio.run(check()))
    finally:
        for process in (loader, purger):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
        stop(server)
        for path in (load_out, purge_out):
            if os.path.exists(path):
                os.unlink(path)
        subprocess.run(["redis-cli", "-u", args.redis_url, "flushdb"], capture_output=True)
    return report(result, args)


def report(result: Result, args) -> int:
    ds = result.dataset
    table = Table(
        title=f"retention purge of {args.rows:,} expired rows, batches of {args.batch_size:,}", title_justify="left"
    )
    for column in ("table", "expired loaded", "deleted", "expired left", "young kept"):
        table.add_column(column, justify="right")
    for name in SPREAD:
        left, young = result.left[name]
        table.add_row(name, f"{ds.expired[name]:,}", f"{result.deleted[name]:,}", f"{left:,}", f"{young:,}")
    left, total = result.left["idempotency_keys"]
    table.add_row(
        "idempotency keys (cleared)", f"{ds.keys:,}", f"{result.deleted['idempotency_keys']:,}", f"{left:,}", "-"
    )
    console.print(table)
    rows_deleted = sum(result.deleted[name] for name in SPREAD)
    console.print(
        f"purge: {rows_deleted:,} rows deleted (+ {result.deleted['idempotency_keys']:,} keys "
        f"cleared) in {result.purge_s:.1f} s = [bold]{rows_deleted / result.purge_s:,.0f} rows/s[/bold]"
    )

    load = Table(
        title=f"POST purchases, {args.connections} concurrent connections (httpx, one process), "
        f"windows of {args.window:g} s",
        title_justify="left",
    )
    for column in ("windows", "windows", "seconds counted", "accepted", "requests/s", "p99 ms"):
        load.add_column(column, justify="right")
    rates = {}
    for label in ("without purge", "during purge"):
        chosen = [w for w in result.windows if w.label == label]
        seconds = sum(w.seconds for w in chosen)
        requests = sum(w.requests for w in chosen)
        latencies = sorted(w.p99_ms for w in chosen)
        rates[label] = requests / seconds if seconds else 0.0
        load.add_row(
            label,
            str(len(chosen)),
            f"{seconds:.1f}",
            f"{requests:,}",
            f"{rates[label]:,.1f}",
            f"{statistics.median(latencies):.0f} (median of windows)" if latencies else "-",
        )
    console.print(load)
    console.print(
        "per window, requests/s: "
        + "  ".join(
            f"{'P' if w.label == 'during purge' else '-'}{w.requests / w.seconds if w.seconds else 0:.0f}"
            for w in result.windows
        )
    )
    ratio = rates["during purge"] / rates["without purge"] if rates["without purge"] else 0.0
    ok = ratio >= GOAL
    verdict = "[green]ok[/green]" if ok else "[red]below the goal[/red]"
    console.print(
        f"[bold]ingress during purge / without: {ratio:.2f}[/bold] (goal ≥ {GOAL}) {verdict}; "
        f"errors: {result.errors}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    complete = (
        all(left == 0 and young == ds.young for name, (left, young) in result.left.items() if name in SPREAD)
        and result.left["idempotency_keys"][0] == 0
    )
    exact = all(result.deleted[name] == ds.expired[name] for name in SPREAD)
    if not (complete and exact):
        console.print("[red]the purge did not delete exactly the expired rows (see the table)[/red]")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "rows": args.rows,
                    "batch_size": args.batch_size,
                    "connections": args.connections,
                    "deleted": result.deleted,
                    "purge_s": result.purge_s,
                    "rows_per_s": rows_deleted / result.purge_s,
                    "windows": [
                        {"label": w.label, "seconds": w.seconds, "requests": w.requests, "p99_ms": w.p99_ms}
                        for w in result.windows
                    ],
                    "ratio": ratio,
                    "errors": result.errors,
                },
                indent=2,
            )
        )
    return 0 if ok and complete and exact else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.retention_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("TENURE_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("TENURE_BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument(
        "--rows",
        type=lambda s: int(s.replace("_", "")),
        default=1_000_000,
        help="expired rows to delete, spread over the tables (default 1,000,000)",
    )
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--window", type=float, default=5.0, help="seconds of each window with and without the purge (they alternate)"
    )
    parser.add_argument(
        "--max-requests", type=int, default=2_000_000, help="the load generator stops after this many requests"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    args = parser.parse_args(argv)
    if args.rows < 10 or args.batch_size < 1 or args.connections < 1 or args.window <= 2 * GUARD_S:
        parser.error("--rows must be at least 10; --batch-size and --connections positive; --window over 1 s")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--load"]:  # the load generator's own process
        url, api_key, connections, max_requests, out = argv[1:6]
        asyncio.run(generate_load(url, api_key, int(connections), int(max_requests), out))
        return 0
    if argv[:1] == ["--purge"]:  # the purge's own process
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
        database_url, batch_size, out = argv[1:4]
        asyncio.run(purge(database_url, int(batch_size), out))
        return 0
    args = parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
