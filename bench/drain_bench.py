"""P2: drain accepted purchases with `tenure worker` against a Dramatiq no-op actor drain.

On a dedicated PostgreSQL database and Redis DB, `--repeat` rounds, each of them:

1. **baseline**: `--count` messages for a no-op actor (`bench.noop_actor`) queued on Redis,
   then `dramatiq bench.noop_actor --processes 1 --threads N` drains them;
2. **tenure**: `--count` purchases accepted as the web accepts them (rows committed, then one
   message per OPERATION_BATCH of them, as the outbox sends; `bench.relay_bench.accept_purchases`),
   then `tenure worker --processes 1 --threads N` drains them (every operation finished, every
   message acknowledged).

Each drain is timed from the first message a worker fetches (the queue shortens) to the
queue and the worker's acknowledgement sets both empty (and, for tenure, every operation
finished), polled every few milliseconds: boot time is not counted. The ratio is tenure's
rate over the baseline's (medians of the rounds).

`--statements N` also drains N purchases with tenure's actors in this process, on a counting
asyncpg connection, and prints the round trips per purchase by kind (BEGIN/COMMIT, the
pool's reset on each checkout, the rest).

    .venv/bin/python -m bench.drain_bench [--database-url URL] [--redis-url URL]
        [--count 2000] [--threads 8] [--repeat 3] [--statements 200] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import redis
from rich.console import Console

from bench.noop_actor import NOOP_QUEUE
from bench.relay_bench import PRICE, accept_purchases, make_organization, start_workers, stop_workers
from bench.sweep_bench import check_targets, ensure_database, fresh_schema

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
POLL_S = 0.005
DRAMATIQ = str(Path(sys.executable).with_name("dramatiq"))
REPO = Path(__file__).resolve().parent.parent

console = Console(width=None if sys.stdout.isatty() else 140)


def waiting(client: redis.Redis, queue: str) -> tuple[int, int]:
    """(messages in the queue, messages fetched by a worker and not acknowledged yet)."""
    acked = sum(client.scard(key) for key in client.scan_iter(f"dramatiq:__acks__.*.{queue}", _type="set"))
    return client.llen(f"dramatiq:{queue}"), acked


def time_drain(
    client: redis.Redis, queue: str, messages: int, proc: subprocess.Popen, finished=lambda: True, timeout: float = 600
) -> float:
    """Seconds from the first fetch (fewer than `messages` queued) to an empty queue, no message
    held and `finished()`."""
    deadline = time.monotonic() + timeout
    while waiting(client, queue)[0] >= messages:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the worker never started ({queue}); see its log")
        time.sleep(POLL_S)
    started = time.monotonic()
    while True:
        queued, held = waiting(client, queue)
        if queued == 0 and held == 0 and finished():
            return time.monotonic() - started
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the drain of {queue} did not end: {queued} queued, {held} held")
        time.sleep(POLL_S)


def cpu_seconds(group: int | None = None, database: str | None = None) -> float:
    """CPU (user + system) used so far by the processes of session `group`, or by the
    PostgreSQL backends connected to `database` (read from /proc: Linux only)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if database is not None and f" {database} " not in (entry / "cmdline").read_text().replace("\0", " "):
                continue
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if group is not None and int(fields[3]) != group:  # the session id
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def baseline_round(args, client: redis.Redis, logs: Path) -> float:
    from dramatiq import Message
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=args.redis_url)
    broker.declare_queue(NOOP_QUEUE)
    for n in range(args.count):
        broker.enqueue(Message(queue_name=NOOP_QUEUE, actor_name="noop", args=(str(n),), kwargs={}, options={}))
    broker.close()
    env = {**os.environ, "TENURE_BENCH_REDIS_URL": args.redis_url}
    with open(logs / "noop.log", "wb") as log:
        proc = subprocess.Popen(
            [DRAMATIQ, "bench.noop_actor", "--processes", "1", "--threads", str(args.threads)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        seconds = time_drain(client, NOOP_QUEUE, args.count, proc)
    finally:
        stop_workers([proc])
    return args.count / seconds


async def unfinished(ids: list[str]) -> int:
    from tables.operations import Operation

    return await Operation.count().where(Operation.id.is_in(ids) & Operation.status.is_in(["pending", "running"]))


async def tenure_round(
    args, sender, client: redis.Redis, who: tuple[str, str], round_no: int, logs: Path
) -> tuple[float, Counter]:
    from tables.operations import Operation

    ids = await accept_purchases(sender, *who, [f"drain{round_no}-{n:06d}.fr" for n in range(args.count)])
    queued = client.llen("dramatiq:operations")  # a message names up to OPERATION_BATCH purchases
    loop = asyncio.get_running_loop()
    procs = start_workers(argparse.Namespace(workers=1, threads=args.threads), args.database_url, args.redis_url, logs)
    try:
        database = args.database_url.rsplit("/", 1)[1]
        database_cpu = cpu_seconds(database=database)
        seconds = await asyncio.to_thread(
            time_drain,
            client,
            "operations",
            queued,
            procs[0],
            lambda: asyncio.run_coroutine_threadsafe(unfinished(ids), loop).result() == 0,
        )
        cpu = {
            "worker_ms": 1000 * cpu_seconds(group=procs[0].pid) / args.count,
            "database_ms": 1000 * (cpu_seconds(database=database) - database_cpu) / args.count,
        }
    finally:
        stop_workers(procs)
    rows = await Operation.select(Operation.status).where(Operation.id.is_in(ids))
    return args.count / seconds, Counter(row["status"] for row in rows), cpu


# --- statements per purchase ---------------------------------------------------------------


def count_round_trips() -> Counter:
    """Counts every statement asyncpg sends from now on, by kind."""
    import asyncpg.connection

    counts: Counter = Counter()
    connection = asyncpg.connection.Connection

    def counting(method):
        async def wrapper(self, query, *args, **kwargs):
            head = query.lstrip().split(None, 1)[0].upper().rstrip(";") if query.strip() else ""
            kind = (
                "reset"
                if "pg_advisory_unlock_all" in query
                else "begin/commit/rollback"
                if head in ("BEGIN", "COMMIT", "ROLLBACK", "START")
                else "query"
            )
            counts[kind] += 1
            return await method(self, query, *args, **kwargs)

        return wrapper

    for name in ("execute", "fetch", "fetchrow", "fetchval", "executemany"):
        setattr(connection, name, counting(getattr(connection, name)))
    return counts


def statements_per_purchase(args, who: tuple[str, str]) -> dict[str, float]:
    """Drains `args.statements` purchases with tenure's actors in this process, counting."""
    import dramatiq

    from runtime.settings import Settings
    from tables import engine
    from worker.actors import declare
    from worker.broker import make_broker
    from worker.queue import Sender

    settings = Settings(
        database_url=args.database_url, broker_url=args.redis_url, secret_key=os.environ["TENURE_SECRET_KEY"]
    )
    broker = make_broker(settings)
    sender = Sender(broker)
    declare(broker, sender, settings)

    async def accept_some() -> list[str]:
        await engine.start_pool(2)
        try:
            return await accept_purchases(sender, *who, [f"statements-{n:06d}.fr" for n in range(args.statements)])
        finally:
            await engine.close_pool()

    ids = asyncio.run(accept_some())
    counts = count_round_trips()
    worker = dramatiq.Worker(broker, worker_threads=args.threads, worker_timeout=100)
    worker.start()
    client = redis.Redis.from_url(args.redis_url)
    deadline = time.monotonic() + 300
    while sum(waiting(client, "operations")) or sum(waiting(client, "tiers")):
        if time.monotonic() > deadline:
            raise SystemExit("the counted drain did not end")
        time.sleep(0.05)
    time.sleep(1.0)  # the delayed tier message (500 ms) runs too: it is part of the work
    worker.join()
    worker.stop()
    broker.close()
    per = {kind: n / len(ids) for kind, n in sorted(counts.items())}
    per["total"] = sum(counts.values()) / len(ids)
    return per


async def setup(args) -> tuple[str, str]:
    """A fresh schema, an empty Redis DB, one owner and an organization funded for every round."""
    from runtime.settings import Settings

    name, _ = check_targets(args.database_url, args.redis_url)
    await ensure_database(args.database_url, name)
    await fresh_schema(args.database_url)
    redis.Redis.from_url(args.redis_url).flushdb()
    settings = Settings(
        database_url=args.database_url, broker_url=args.redis_url, secret_key=os.environ["TENURE_SECRET_KEY"]
    )
    return await asyncio.to_thread(
        make_organization, settings, 2 * PRICE * (args.repeat * args.count + args.statements)
    )


async def run(args, who: tuple[str, str]) -> dict:
    from runtime.settings import Settings
    from tables import engine
    from worker.broker import make_broker
    from worker.queue import Sender

    client = redis.Redis.from_url(args.redis_url)
    settings = Settings(
        database_url=args.database_url, broker_url=args.redis_url, secret_key=os.environ["TENURE_SECRET_KEY"]
    )
    logs = Path(args.logs)
    logs.mkdir(parents=True, exist_ok=True)
    engine.bind(engine.for_url(args.database_url))
    await engine.start_pool(4)
    sender = Sender(make_broker(settings))
    baseline, tenure, cpus = [], [], []
    try:
        for round_no in range(args.repeat):
            baseline.append(await asyncio.to_thread(baseline_round, args, client, logs))
            rate, statuses, cpu = await tenure_round(args, sender, client, who, round_no, logs)
            tenure.append(rate)
            cpus.append(cpu)
            console.print(
                f"round {round_no + 1}: no-op {baseline[-1]:,.0f} msg/s, tenure {rate:,.0f} "
                f"purchases/s ({dict(statuses)}), ratio {rate / baseline[-1]:.3f}; CPU per "
                f"purchase: worker {cpu['worker_ms']:.1f} ms, database {cpu['database_ms']:.1f} ms"
            )
    finally:
        sender.broker.close()
        await engine.close_pool()
    result = {
        "count": args.count,
        "threads": args.threads,
        "baseline_per_s": statistics.median(baseline),
        "tenure_per_s": statistics.median(tenure),
        "load": os.getloadavg(),
        "cpu_per_purchase_ms": {key: statistics.median(c[key] for c in cpus) for key in cpus[0]},
    }
    result["ratio"] = result["tenure_per_s"] / result["baseline_per_s"]
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.drain_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("TENURE_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("TENURE_BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--count", type=int, default=2_000, help="purchases (and no-op messages) a round")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (one process)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the figures are medians")
    parser.add_argument(
        "--statements", type=int, default=0, help="also count the round trips of this many purchases (0: skip)"
    )
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--logs", default="var/drain_bench", help="where the workers' logs go")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    args = parse_args(argv)
    from bench.sweep_bench import new_key

    os.environ.setdefault("TENURE_SECRET_KEY", new_key())  # one key for every process of the run
    who = asyncio.run(setup(args))
    result = asyncio.run(run(args, who)) if args.repeat else {}
    if args.statements:
        result["round_trips_per_purchase"] = statements_per_purchase(args, who)
    console.print_json(data=result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
