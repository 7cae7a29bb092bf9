"""Ingress benchmark: how fast `tenure web` accepts purchases, against the raw stack.

Three servers, each one uvicorn process (uvloop + httptools) loaded by wrk in the same run:
- raw decode: Litestar + msgspec decode, 202 (bench/raw_app.py);
- raw insert: the same plus one asyncpg insert (pool of 20) into PostgreSQL;
- tenure: `POST /v1/organizations/{org}/purchases` as a client sends it: API-key auth,
  membership and permission checks, validation, the operation row committed, the message
  sent to Redis, 202. No worker runs, so only the ingress is measured.
It prints requests/s and p99 latency of each, and tenure's ratios to the two baselines.

    .venv/bin/python -m bench.ingress_bench [--duration 10] [--connections 32]

Needs wrk (Debian package `wrk`), PostgreSQL (database `bench`, re-migrated) and Redis DB 12.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
from rich.console import Console
from rich.table import Table

from bench.sweep_bench import check_targets, ensure_database, fresh_schema, new_key

REPO = Path(__file__).resolve().parent.parent
console = Console()

LUA = """
counter = 0
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  counter = counter + 1
  local body = string.format(
    '{"kind":"mailbox","name":"m%d-%d@bench.test","years":1,"payment_method":"prepaid"}',
    counter, math.random(1, 1000000000))
  return wrk.format("POST", wrk.path, wrk.headers, body)
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def serve(argv: list[str], env: dict[str, str], port: int) -> subprocess.Popen:
    process = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def wrk(url: str, headers: dict[str, str], duration: int, connections: int) -> tuple[float, float]:
    """Requests/s and p99 latency (ms) of a POST load on `url`."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA)
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script.name]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    done = subprocess.run([*argv, url], capture_output=True, text=True, timeout=duration + 60)
    os.unlink(script.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", done.stdout)
    factor = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    if errors:
        raise RuntimeError(f"{errors.group(1)} error answers from {url}:\n{done.stdout}")
    return rate, float(p99.group(1)) * factor


async def prepare_raw_table(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS raw_ops (id bigserial PRIMARY KEY, name text, body text)")
    finally:
        await conn.close()


def run(args) -> int:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    name, _ = check_targets(args.database_url, args.redis_url)
    asyncio.run(ensure_database(args.database_url, name))
    asyncio.run(fresh_schema(args.database_url))
    asyncio.run(prepare_raw_table(args.database_url))
    subprocess.run(["redis-cli", "-u", args.redis_url, "flushdb"], check=True, capture_output=True)
    env = {
        "TENURE_SECRET_KEY": new_key(),
        **os.environ,
        "RAW_DATABASE_URL": args.database_url,
        "TENURE_DATABASE_URL": args.database_url,
        "TENURE_BROKER_URL": args.redis_url,
        "TENURE_LOG_LEVEL": "WARNING",
        # Counted in Redis as in production (one round trip per request), never reached.
        "TENURE_RATE_LIMIT_PER_KEY": "100000000/minute",
    }
    uvicorn = [sys.executable, "-m", "uvicorn", "--no-access-log", "--log-level", "warning"]
    rows = []
    for label, module in (("raw decode", "bench.raw_app:decode_only"), ("raw insert", "bench.raw_app:with_insert")):
        port = free_port()
        server = serve([*uvicorn, "--port", str(port), module], env, port)
        try:
            wrk(f"http://127.0.0.1:{port}/purchases", {"Content-Type": "application/json"}, 2, args.connections)
            rows.append(
                (
                    label,
                    *wrk(
                        f"http://127.0.0.1:{port}/purchases",
                        {"Content-Type": "application/json"},
                        args.duration,
                        args.connections,
                    ),
                )
            )
        finally:
            stop(server)
    port = free_port()
    server = serve([sys.executable, "-m", "command.main", "web", "--port", str(port)], env, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            account = client.post("/v1/accounts", json={"email": "bench@bench.test", "name": "Bench"}).json()
            auth = {"Authorization": f"Bearer {account['api_key']}", "Content-Type": "application/json"}
            org = client.post("/v1/organizations", json={"name": "Bench", "reseller": False}, headers=auth).json()
        url = f"http://127.0.0.1:{port}/v1/organizations/{org['id']}/purchases"
        wrk(url, auth, 2, args.connections)
        rows.append(("tenure accept", *wrk(url, auth, args.duration, args.connections)))
    finally:
        stop(server)

    table = Table(
        title=f"POST, wrk -t2 -c{args.connections} -d{args.duration}s, one uvicorn process each", title_justify="left"
    )
    for column in ("server", "requests/s", "p99 ms"):
        table.add_column(column, justify="right")
    for label, rate, p99 in rows:
        table.add_row(label, f"{rate:,.0f}", f"{p99:.1f}")
    console.print(table)
    rates = {label: rate for label, rate, _ in rows}
    console.print(
        f"tenure / raw insert: {rates['tenure accept'] / rates['raw insert']:.2f}   "
        f"tenure / raw decode: {rates['tenure accept'] / rates['raw decode']:.2f}   "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench.ingress_bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TENURE_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench"),
    )
    parser.add_argument("--redis-url", default=os.environ.get("TENURE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"))
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
