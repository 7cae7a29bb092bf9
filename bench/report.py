"""bench/run's command line and its table: medians, ratios and the issue's goals."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import redis
from rich.table import Table

from bench.run import MAX_RSS_MIB, PATHS, Run, console, refuse_test_targets
from bench.sweep_bench import ensure_database, fresh_schema

TINY = {
    "repeat": 1,
    "duration": 1,
    "connections": 8,
    "drain": 20,
    "deliveries": 20,
    "sweep_sizes": "500,1000",
    "sweep_due": 50,
}


def rows(run: Run) -> list[tuple[str, str, str, str, str, bool | None]]:
    """(path, tenure, baseline, ratio, goal, met) for each path measured."""
    m, out = run.median, []

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    def paired(a: str, b: str) -> float | None:
        """The median of each round's ratio (a round measures both, one after the other)."""
        pairs = [x / y for x, y in zip(run.samples.get(a, []), run.samples.get(b, []), strict=False) if y]
        return statistics.median(pairs) if pairs else None

    def fmt(value: float | None, spec: str = ",.0f") -> str:
        return "-" if value is None else format(value, spec)

    if m("P1.web.rate") is not None:
        r = paired("P1.web.rate", "P1.raw.rate")
        out.append(
            (
                "P1 accept (wrk)",
                f"{fmt(m('P1.web.rate'))}/s, p99 {fmt(m('P1.web.p99_ms'))} ms",
                f"Litestar + asyncpg insert {fmt(m('P1.raw.rate'))}/s, p99 {fmt(m('P1.raw.p99_ms'))} ms",
                fmt(r, ".2f"),
                ">= 0.6",
                r is not None and r >= 0.6,
            )
        )
        r = paired("P1.web2.rate", "P1.web.rate")
        out.append(
            (
                "P1 web --workers 2",
                f"{fmt(m('P1.web2.rate'))}/s, p99 {fmt(m('P1.web2.p99_ms'))} ms",
                f"web, 1 process: {fmt(m('P1.web.rate'))}/s",
                fmt(r, ".2f"),
                "> 1 (scales)",
                r is not None and r > 1,
            )
        )
    if m("P2.tenure") is not None:
        r = paired("P2.tenure", "P2.baseline")
        out.append(
            (
                f"P2 drain {run.args.drain:,} purchases, 1 x {8}",
                f"{fmt(m('P2.tenure'))}/s",
                f"Dramatiq no-op {fmt(m('P2.baseline'))}/s",
                fmt(r, ".2f"),
                ">= 0.4",
                r is not None and r >= 0.4,
            )
        )
    sizes = run.notes.get("sweep_sizes")
    if sizes:
        small, big = m(f"P3.sweep_ms.{min(sizes)}"), m(f"P3.sweep_ms.{max(sizes)}")
        r = ratio(big, small)
        out.append(
            (
                f"P3 sweep {run.args.sweep_due:,} due",
                f"{fmt(big)} ms among {max(sizes):,}",
                f"{fmt(small)} ms among {min(sizes):,}",
                fmt(r, ".2f"),
                "<= 1.5",
                r is not None and r <= 1.5,
            )
        )
    if m("P4.tenure") is not None:
        r = paired("P4.tenure", "P4.baseline")
        out.append(
            (
                f"P4 webhooks, {run.args.deliveries:,} deliveries",
                f"{fmt(m('P4.tenure'))}/s",
                f"httpx, one client {fmt(m('P4.baseline'))}/s",
                fmt(r, ".2f"),
                ">= 0.5",
                r is not None and r >= 0.5,
            )
        )
    web_rss, worker_rss = run.notes.get("web_rss_mib"), run.notes.get("worker_rss_mib")
    if web_rss is not None or worker_rss:
        biggest = max([web_rss or 0, *(worker_rss or [0])])
        out.append(
            (
                "P5 RSS per process after load",
                f"web {fmt(web_rss)} MiB, worker processes " + ", ".join(fmt(x) for x in worker_rss or []) + " MiB",
                "-",
                "-",
                f"<= {MAX_RSS_MIB} MiB each",
                biggest <= MAX_RSS_MIB,
            )
        )
    if m("P1.demo.rate") is not None:
        r = paired("P1.demo.rate", "P1.web.rate")
        timeouts, backlog = sum(run.samples["P1.demo.timeouts"]), m("P6.backlog_share")
        out.append(
            (
                "P6 tenure demo (SQLite)",
                f"{fmt(m('P1.demo.rate'))}/s, p99 {fmt(m('P1.demo.p99_ms'))} ms, "
                f"{timeouts:.0f} timeouts, backlog {fmt(backlog * 100, '.0f')} %",
                f"tenure web on PostgreSQL {fmt(m('P1.web.rate'))}/s",
                fmt(r, ".2f"),
                ">= 0.5, no timeouts, backlog < 10 %",
                r is not None and r >= 0.5 and timeouts == 0 and backlog < 0.1,
            )
        )
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run",
        description=__import__("bench.run").run.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TENURE_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench"),
    )
    parser.add_argument("--redis-url", default=os.environ.get("TENURE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"))
    parser.add_argument("--repeat", type=int, default=3, help="measurements of each path (medians reported)")
    parser.add_argument("--duration", type=float, default=10, help="seconds of each wrk load (P1, P6)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--drain", type=int, default=2000, help="P2: purchases drained")
    parser.add_argument("--deliveries", type=int, default=1000, help="P4: deliveries sent")
    parser.add_argument("--sweep-sizes", default="100000,1000000", help="P3: products, smallest and largest")
    parser.add_argument("--sweep-due", type=int, default=10000)
    parser.add_argument("--only", default=",".join(PATHS), help="paths to run, e.g. P1,P4")
    parser.add_argument(
        "--tiny", action="store_true", help="every path once at a tiny size, no goals checked (for the test suite)"
    )
    parser.add_argument("--json", metavar="PATH", help="write every sample and median to PATH")
    args = parser.parse_args(argv)
    if args.tiny:
        for name, value in TINY.items():
            setattr(args, name, value)
    args.only = {p.strip().upper() for p in args.only.split(",")}
    return args


def main(argv: list[str] | None = None) -> int:
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    args = parse_args(argv)
    refuse_test_targets(args.database_url, args.redis_url)
    os.environ["BENCH_REDIS_URL"] = args.redis_url  # bench.noop, imported by P2, reads it
    if ({"P1", "P6"} & args.only) and shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (bench/run installs it with apt-get when run as root)")
    started, load_start = time.monotonic(), os.getloadavg()
    run = Run(args)
    name = args.database_url.rsplit("/", 1)[1]
    asyncio.run(ensure_database(args.database_url, name))
    asyncio.run(fresh_schema(args.database_url))
    redis.Redis.from_url(args.redis_url).flushdb()
    try:
        if {"P1", "P5", "P6"} & args.only:
            run.ingress()
        if {"P2", "P4", "P5"} & args.only:
            asyncio.run(run.workloads())
        if "P3" in args.only:
            run.sweep()  # last: it drops and re-loads the schema
    finally:
        run.stop_all()
    table = Table(
        title=f"bench/run, medians of {args.repeat} (ratios: the median of each round's){' (tiny: no goals)' if args.tiny else ''}",
        title_justify="left",
    )
    for column in ("path", "tenure", "raw baseline, same run", "ratio", "goal", "met"):
        table.add_column(column)
    measured = rows(run)
    for path, tenure, baseline, ratio, goal, met in measured:
        table.add_row(path, tenure, baseline, ratio, goal, "-" if args.tiny else ("yes" if met else "NO"))
    console.print(table)
    uptime = Path("/proc/loadavg").read_text().split()[:3]
    console.print(
        f"load average at start {load_start[0]:.2f}, at end {' '.join(uptime)} on {os.cpu_count()} "
        f"cores; {time.monotonic() - started:.0f} s; logs in {run.logs}"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "args": {k: sorted(v) if isinstance(v, set) else v for k, v in vars(args).items()},
                    "load_average": {"start": load_start, "end": os.getloadavg()},
                    "cpus": os.cpu_count(),
                    "samples": run.samples,
                    "notes": run.notes,
                    "rows": [
                        dict(zip(("path", "tenure", "baseline", "ratio", "goal", "met"), r, strict=True))
                        for r in measured
                    ],
                },
                indent=2,
            )
        )
    return 0 if args.tiny or all(met for *_, met in measured) else 1


if __name__ == "__main__":
    sys.exit(main())
