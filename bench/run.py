"""bench/run: P1-P6 of the speed goals, each with its raw baseline measured in the same run.

Repeats are interleaved (tenure, then its baseline, then the next path, N times) so the
load of a shared machine falls on both sides; medians are reported, with ratios against the
goals. See bench/README.md.

    bench/run [--database-url URL] [--redis-url URL] [--repeat 3] [--duration 10] [--tiny]
        [--json PATH] [--only P1,P2,...]
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from rich.console import Console

from bench import load
from bench.ingress_bench import prepare_raw_table
from bench.sweep_bench import check_targets, new_key

console = Console(width=None if sys.stdout.isatty() else 160)
PATHS = ("P1", "P2", "P3", "P4", "P5", "P6")
MAX_RSS_MIB = 150


def refuse_test_targets(database_url: str, redis_url: str) -> None:
    """Never the test suite's databases: the run drops the schema and flushes the Redis DB."""
    name, redis_db = check_targets(database_url, redis_url)
    if re.match(r"^(test|t_)", name):
        raise SystemExit(f"refusing database {name!r}: it looks like a test database")
    for variable, ours in (("TENURE_TEST_POSTGRES_URL", database_url), ("TENURE_TEST_REDIS_URL", redis_url)):
        theirs = os.environ.get(variable)
        if theirs and urlparse(theirs)._replace(query="") == urlparse(ours)._replace(query=""):
            raise SystemExit(f"refusing {ours}: it is {variable}, the tests'")


class Run:
    def __init__(self, args) -> None:
        self.args = args
        self.logs = Path(tempfile.mkdtemp(prefix="bench-run-"))
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TENURE_")},
            "TENURE_SECRET_KEY": new_key(),
            "TENURE_DATABASE_URL": args.database_url,
            "TENURE_BROKER_URL": args.redis_url,
            "TENURE_LOG_LEVEL": "WARNING",
            "TENURE_RATE_LIMIT_PER_KEY": "100000000/minute",
            "TENURE_ALLOW_PRIVATE_WEBHOOK_URLS": "1",
            "RAW_DATABASE_URL": args.database_url,
            "BENCH_REDIS_URL": args.redis_url,
            "PYTHONUNBUFFERED": "1",
        }
        self.samples: dict[str, list[float]] = {}
        self.notes: dict[str, object] = {}
        self.servers: dict[str, subprocess.Popen] = {}

    def stop_all(self) -> None:
        for name in list(self.servers):
            load.stop(self.servers.pop(name))

    def sample(self, name: str, value: float) -> None:
        self.samples.setdefault(name, []).append(value)
        console.print(f"  {name} = {value:,.3f}", highlight=False)

    def median(self, name: str) -> float | None:
        values = self.samples.get(name)
        return statistics.median(values) if values else None

    def serve(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> str:
        port = load.free_port()
        self.servers[name] = load.start([*argv, "--port", str(port)], env or self.env, self.logs / f"{name}.log", port)
        return f"http://127.0.0.1:{port}"

    # --- P1, P5 (web), P6 -----------------------------------------------------------------

    def ingress(self) -> None:
        a = self.args
        asyncio.run(prepare_raw_table(a.database_url))
        raw = self.serve(
            "raw",
            [sys.executable, "-m", "uvicorn", "--no-access-log", "--log-level", "warning", "bench.raw_app:with_insert"],
        )
        web = self.serve("web", [*load.TENURE, "web"])
        web2 = self.serve("web2", [*load.TENURE, "web", "--workers", "2"])
        targets = {
            "raw": (f"{raw}/purchases", {"Content-Type": "application/json"}),
            "web": load.purchase_target(web),
            "web2": load.purchase_target(web2),
        }
        demo_file = None
        if "P6" in a.only:
            demo_file = self.logs / "demo.sqlite3"
            demo = self.serve(
                "demo",
                [*load.TENURE, "demo"],
                # the embedded default: SQLite and the in-process broker (no TENURE_BROKER_URL)
                {k: v for k, v in self.env.items() if k != "TENURE_BROKER_URL"}
                | {"TENURE_DATABASE_URL": f"sqlite:///{demo_file}"},
            )
            targets["demo"] = load.purchase_target(demo)
        for url, headers in targets.values():  # warm-up
            load.wrk(url, headers, 1, a.connections)
        for _ in range(a.repeat):
            for name, (url, headers) in targets.items():
                before = demo_counts(demo_file) if name == "demo" else None
                result = load.wrk(url, headers, a.duration, a.connections)
                self.sample(f"P1.{name}.rate", result.rate)
                self.sample(f"P1.{name}.p99_ms", result.p99_ms)
                self.sample(f"P1.{name}.timeouts", result.timeouts)
                self.sample(f"P1.{name}.errors", result.errors)
                if name == "demo":
                    after = demo_counts(demo_file)
                    accepted = after["all"] - before["all"]
                    waiting = after["unfinished"]
                    self.sample("P6.backlog_share", waiting / accepted if accepted else 0.0)
        self.notes["web_rss_mib"] = load.rss_mib(self.servers["web"].pid)
        self.notes["web2_rss_mib"] = [load.rss_mib(p) for p in load.descendants(self.servers["web2"].pid)]
        for name in list(self.servers):
            load.stop(self.servers.pop(name))

    # --- P2, P4 ----------------------------------------------------------------------------

    async def workloads(self) -> None:
        from bench import workloads
        from runtime.settings import Settings
        from tables import engine
        from worker.broker import make_broker
        from worker.queue import Sender

        a = self.args
        settings = Settings(
            database_url=a.database_url,
            broker_url=a.redis_url,
            allow_private_webhook_urls=True,
            secret_key=self.env["TENURE_SECRET_KEY"],
        )
        ctx = workloads.Context(a.database_url, a.redis_url, self.env, self.logs)
        engine.bind(engine.for_url(a.database_url))
        await engine.start_pool(12)
        sender = Sender(make_broker(settings))
        try:
            hook = None
            if "P4" in a.only:
                receiver_url = (
                    self.serve(
                        "receiver",
                        [
                            sys.executable,
                            "-m",
                            "uvicorn",
                            "--no-access-log",
                            "--log-level",
                            "warning",
                            "bench.receiver_app:app",
                        ],
                    )
                    + "/hook"
                )
                hook = await asyncio.to_thread(workloads.make_hook, settings, receiver_url)
            for _ in range(a.repeat):
                if "P2" in a.only:
                    rates = await workloads.drain(ctx, sender, a.drain, settings)
                    self.sample("P2.tenure", rates["tenure"])
                    self.sample("P2.baseline", rates["baseline"])
                if hook is not None:
                    rates = await workloads.deliveries(ctx, sender, hook, receiver_url, a.deliveries)
                    self.sample("P4.tenure", rates["tenure"])
                    self.sample("P4.baseline", rates["baseline"])
            if "worker" in ctx.rss:
                self.notes["worker_rss_mib"] = ctx.rss["worker"]
        finally:
            sender.broker.close()
            await engine.close_pool()
            if "receiver" in self.servers:
                load.stop(self.servers.pop("receiver"))

    # --- P3 --------------------------------------------------------------------------------

    def sweep(self) -> None:
        a = self.args
        out = self.logs / "sweep.json"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.sweep_bench",
                "--database-url",
                a.database_url,
                "--redis-url",
                a.redis_url,
                "--sizes",
                a.sweep_sizes,
                "--due",
                str(a.sweep_due),
                "--repeat",
                str(a.repeat),
                "--json",
                str(out),
            ],
            cwd=load.REPO,
            env={**os.environ, "TENURE_SECRET_KEY": new_key()},
            capture_output=True,
            text=True,
            timeout=3600,
        )
        if not out.exists():
            raise RuntimeError(f"bench.sweep_bench failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        sizes = json.loads(out.read_text())["sizes"]
        for size in sizes:
            self.sample(f"P3.sweep_ms.{size['size']}", statistics.median(size["sweep"]) * 1000)
        self.notes["sweep_sizes"] = [s["size"] for s in sizes]


def demo_counts(path: Path | None) -> dict[str, int]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
        rows = dict(
            conn.execute("SELECT status, count(*) FROM operations WHERE kind = 'purchase' GROUP BY status").fetchall()
        )
    return {"all": sum(rows.values()), "unfinished": rows.get("pending", 0) + rows.get("running", 0)}
