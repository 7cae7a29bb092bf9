"""The `tenure` command: demo, migrate, web, worker, scheduler."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from tables.settings import Settings


def _bind(settings: Settings) -> None:
    from tables import engine

    engine.bind(engine.for_url(settings.database_url))


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    from tables.migrate import migrate

    _bind(settings)
    asyncio.run(migrate())
    return 0


def cmd_web(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from web.app import create_app
    from web.http_protocol import JsonErrorsProtocol

    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None,
                proxy_headers=True, access_log=False, http=JsonErrorsProtocol)
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Dramatiq's own worker command: processes, threads, restarts and signals are its job."""
    if settings.broker_url is None:
        print("tenure worker needs TENURE_BROKER_URL (redis://... or amqp://...); "
              "`tenure demo` runs workers in-process", file=sys.stderr)
        return 2
    argv = [sys.executable, "-m", "dramatiq", "worker.main",
            "--processes", str(args.processes), "--threads", str(args.threads)]
    # Dramatiq's metrics server runs in a process forked by its main process, which reads
    # the port from the environment when its Prometheus module is imported.
    os.environ.setdefault("dramatiq_prom_port", str(settings.worker_metrics_port))
    os.execv(sys.executable, argv)
    return 0  # not reached


def cmd_scheduler(settings: Settings, _: argparse.Namespace) -> int:
    from worker.scheduler import run_forever

    if settings.broker_url is None:
        print("tenure scheduler needs TENURE_BROKER_URL; `tenure demo` runs it in-process",
              file=sys.stderr)
        return 2
    _bind(settings)
    asyncio.run(run_forever(settings))
    return 0


def cmd_sweep(settings: Settings, args: argparse.Namespace) -> int:
    """One pass of the scheduler's jobs now (or as of --at), then exit: for ops and tests."""
    import json
    from datetime import datetime

    from tables import engine
    from tables.clock import clock
    from worker import sweeps
    from worker.broker import make_broker
    from worker.queue import Sender
    from worker.relay import relay
    from worker.scheduler import webhooks_tick

    if settings.broker_url is None:
        print("tenure sweep needs TENURE_BROKER_URL", file=sys.stderr)
        return 2
    if args.at:
        clock.pin(datetime.fromisoformat(args.at))
    _bind(settings)

    async def once() -> dict:
        await engine.start_pool(4)
        try:
            sender = Sender(make_broker(settings))
            taken = await sweeps.run_all(sender)
            taken["relay"] = await relay(sender, settings.relay_stall_seconds)
            await webhooks_tick(sender)
            return taken
        finally:
            await engine.close_pool()

    print(json.dumps(asyncio.run(once())))
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from tables.migrate import migrate
    from web.app import create_app
    from web.demo import print_welcome, seed
    from web.http_protocol import JsonErrorsProtocol
    from worker.embedded import Embedded

    if "TENURE_DATABASE_URL" not in os.environ:
        settings = Settings(**{**{f: getattr(settings, f) for f in settings.__struct_fields__},
                               "database_url": "sqlite:///var/demo.sqlite3"})
    _bind(settings)
    asyncio.run(migrate())
    demo = asyncio.run(seed())
    print_welcome(demo, f"http://{args.host}:{args.port}", settings)
    embedded = Embedded(settings)
    app = create_app(settings, sender=embedded.sender, extra_lifespans=[embedded.lifespan])
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, http=JsonErrorsProtocol)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tenure", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="everything in one process on a SQLite file, with demo data")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    sub.add_parser("migrate", help="apply database migrations (TENURE_DATABASE_URL)")
    worker = sub.add_parser("worker", help="run Dramatiq worker processes (TENURE_BROKER_URL)")
    worker.add_argument("--processes", type=int, default=2)
    worker.add_argument("--threads", type=int, default=8)
    sub.add_parser("scheduler", help="run the scheduler (relay and sweeps)")
    sweep = sub.add_parser("sweep", help="run the scheduler's jobs once and exit")
    sweep.add_argument("--at", help="as of this RFC 3339 time instead of now")
    web = sub.add_parser("web", help="serve the HTTP API")
    web.add_argument("--host", default="127.0.0.1")
    web.add_argument("--port", type=int, default=8000)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from worker.logs import configure

    settings = Settings.from_env()
    configure(level=settings.log_level)
    handlers = {"demo": cmd_demo, "migrate": cmd_migrate, "web": cmd_web, "worker": cmd_worker,
                "scheduler": cmd_scheduler, "sweep": cmd_sweep}
    return handlers[args.command](settings, args)


if __name__ == "__main__":
    sys.exit(main())
