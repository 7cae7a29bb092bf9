"""A year of a reseller rehearsed in a sandbox: how long one test-clock advance takes.

    python -m bench.test_clock_bench [--database-url sqlite|postgresql://.../NAME]
        [--redis-url URL] [--products 200] [--clients 30] [--months 13]

The scenario of tests/integration/test_test_clocks.py at full size (tests/integration/rehearsal.py):
a sandbox reseller with `--clients` clients buys `--products` domains in three waves ten
simulated days apart (one in four without autorenew), beside a production reseller holding
some of the same names; then one advance moves the sandbox `--months` months ahead. Timed:
that advance, from the POST to its last webhook received by a local endpoint. The run then
checks what the test checks (each event once, in simulated order; states as the lifecycle
rules give; production untouched) and fails if anything is off, so a fast wrong answer never
passes for a result.

In-process, as the integration tests run: the real app (Litestar's TestClient), Dramatiq
workers on 4 threads, a real Redis (a private `redis-server` on a free port unless
`--redis-url`), and the database: `sqlite` (a temporary file, the default) or a PostgreSQL
URL whose public schema is dropped and re-migrated (never `test` or `postgres`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

T0 = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)
PROTECTED_DATABASES = {"test", "postgres"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def private_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: pass --redis-url")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return proc, f"redis://127.0.0.1:{port}/0"
        except redis.RedisError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)


def prepare_database(url: str, workdir: Path) -> str:
    from tests import databases

    if url == "sqlite":
        url = f"sqlite:///{workdir / 'bench.sqlite3'}"
    else:
        name = urlparse(url).path.lstrip("/")
        if name in PROTECTED_DATABASES:
            raise SystemExit(f"refusing database {name!r}: its schema is dropped; use a dedicated one")
        import asyncpg

        async def reset() -> None:
            conn = await asyncpg.connect(url, timeout=5)
            try:
                await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
            finally:
                await conn.close()

        asyncio.run(reset())
    databases.run_migrate(url)
    return url


def run(database_url: str, redis_url: str, products: int, clients: int, months: int) -> dict:
    import dramatiq
    import redis
    from litestar.testing import TestClient

    from runtime.clock import clock
    from runtime.settings import Settings
    from tables import engine
    from tables.products import Product
    from tests import databases
    from tests.integration import rehearsal
    from tests.integration.receiver import Receiver
    from tests.ratelimits import UNLIMITED
    from web.app import create_app
    from worker.actors import declare
    from worker.broker import make_broker
    from worker.logs import configure
    from worker.queue import Sender

    configure(level="WARNING")
    redis.Redis.from_url(redis_url).flushdb()
    engine.bind(engine.for_url(database_url))
    databases.configure_secrets(database_url)
    settings = Settings(
        database_url=database_url,
        broker_url=redis_url,
        ops_token="ops-secret",
        relay_stall_seconds=30,
        allow_private_webhook_urls=True,
        **UNLIMITED,
    )
    broker = make_broker(settings)
    sender = Sender(broker)
    declare(broker, sender, settings)
    worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=100)
    worker.start()
    receiver = Receiver()
    receiver.base = receiver.start()
    clock.pin(T0)  # production's time stands still: only the sandbox's moves
    try:
        with TestClient(create_app(settings, sender=sender)) as api:
            started = time.monotonic()
            scene = rehearsal.build(api, broker, receiver, products=products, clients=clients)
            built = time.monotonic() - started
            rehearsal.rehearse(api, broker, scene, months)
            rehearsal.check(api, receiver, scene)
            states = Counter(
                r["state"]
                for r in asyncio.run(Product.select(Product.state).where(Product.organization == scene.sandbox).run())
            )
            return {
                "backend": "sqlite" if database_url.startswith("sqlite") else "postgresql",
                "setup_s": built,
                "advance_s": scene.advance_seconds,
                "steps": scene.advance_op["result"]["steps"],
                "events": len(receiver.delivered("/sandbox")),
                "states": dict(states),
            }
    finally:
        clock.reset()
        receiver.stop()
        worker.stop()
        broker.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default="sqlite",
        help="sqlite (a temporary file) or postgresql://.../NAME (its schema is dropped)",
    )
    parser.add_argument("--redis-url", help="a Redis DB to flush (default: a private redis-server)")
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--months", type=int, default=13)
    args = parser.parse_args(argv)
    os.environ.setdefault("TENURE_LOG_LEVEL", "WARNING")
    with tempfile.TemporaryDirectory(prefix="tenure-test-clock-bench-") as tmp:
        workdir = Path(tmp)
        redis_proc, redis_url = (None, args.redis_url) if args.redis_url else private_redis(workdir)
        try:
            url = prepare_database(args.database_url, workdir)
            figures = run(url, redis_url, args.products, args.clients, args.months)
        finally:
            if redis_proc is not None:
                redis_proc.terminate()
                redis_proc.wait(10)
    print(
        f"{figures['backend']}: {args.products} products, {args.clients} clients, {args.months} months "
        f"in one advance: {figures['advance_s']:.1f} s ({figures['steps']} due instants, "
        f"{figures['events']} webhooks received in order; setup {figures['setup_s']:.1f} s); "
        f"states {figures['states']}"
    )
    return 0 if figures["advance_s"] < 60 else 1


if __name__ == "__main__":
    sys.exit(main())
