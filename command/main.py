"""The `tenure` command: demo, migrate, web, worker, scheduler, sweep, backup, restore."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import msgspec

from runtime.settings import Settings

DEMO_DATABASE_URL = "sqlite:///var/demo.sqlite3"
# Commands that read or write the database's secrets: they refuse to start without a key.
NEEDS_SECRET_KEY = {"demo", "migrate", "web", "worker", "scheduler", "sweep"}
# Long-running commands: on SQLite they mark the database in use (`tenure restore` waits for them).
SERVES_DATABASE = {"demo", "web", "worker", "scheduler"}


def _bind(settings: Settings) -> None:
    from tables import engine

    engine.bind(engine.for_url(settings.database_url))


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    from tables.migrate import migrate

    _bind(settings)
    asyncio.run(migrate())
    return 0


def cmd_web(settings: Settings, args: argparse.Namespace) -> int:
    """One uvicorn process, or (--workers N) a supervisor and N processes sharing the socket:
    a web process is bound by its one event loop (its CPU), so ingress scales with processes."""
    import uvicorn

    from web.http_protocol import JsonErrorsProtocol

    if args.workers < 1:
        print("tenure web: --workers must be 1 or more", file=sys.stderr)
        return 2
    if args.workers == 1:
        from web.app import create_app

        app = create_app(settings)
    else:  # each process builds its own app from the environment (uvicorn starts them afresh)
        app = "command.main:app_from_environment"
    uvicorn.run(
        app,
        factory=args.workers > 1,
        workers=args.workers,
        host=args.host,
        port=args.port,
        log_config=None,
        proxy_headers=True,
        access_log=False,
        http=JsonErrorsProtocol,
    )
    return 0


def app_from_environment():
    """The app of one `tenure web --workers N` process, configured as `main` configures the parent."""
    from tables import secrets_at_rest
    from web.app import create_app
    from worker.logs import configure

    settings = Settings.from_env()
    configure(level=settings.log_level)
    secrets_at_rest.configure(settings)
    return create_app(settings)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Dramatiq's own worker command: processes, threads, restarts and signals are its job."""
    if settings.broker_url is None:
        print(
            "tenure worker needs TENURE_BROKER_URL (redis://... or amqp://...); `tenure demo` runs workers in-process",
            file=sys.stderr,
        )
        return 2
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        "worker.main",
        "--processes",
        str(args.processes),
        "--threads",
        str(args.threads),
    ]
    # Dramatiq's metrics server runs in a process forked by its main process, which reads
    # the port from the environment when its Prometheus module is imported.
    os.environ.setdefault("dramatiq_prom_port", str(settings.worker_metrics_port))
    os.execv(sys.executable, argv)
    return 0  # not reached


def cmd_scheduler(settings: Settings, _: argparse.Namespace) -> int:
    from worker.scheduler import run_forever

    if settings.broker_url is None:
        print("tenure scheduler needs TENURE_BROKER_URL; `tenure demo` runs it in-process", file=sys.stderr)
        return 2
    _bind(settings)
    asyncio.run(run_forever(settings))
    return 0


def cmd_sweep(settings: Settings, _: argparse.Namespace) -> int:
    """One pass of the scheduler's jobs now, then exit (after an outage). Time travel is a
    sandbox organization's test clock (POST /v1/organizations/{org}/test-clock), which works in
    every mode; the production sweeps always run at the wall clock."""
    import json

    from tables import engine
    from worker import sweeps
    from worker.broker import make_broker
    from worker.execution import Bounds
    from worker.queue import Sender
    from worker.relay import relay
    from worker.scheduler import webhooks_tick

    if settings.broker_url is None:
        print("tenure sweep needs TENURE_BROKER_URL", file=sys.stderr)
        return 2
    _bind(settings)

    async def once() -> dict:
        await engine.start_pool(4)
        try:
            sender = Sender(make_broker(settings))
            taken = await sweeps.run_all(sender)
            taken["relay"] = await relay(sender, settings.relay_stall_seconds, Bounds.of(settings))
            await webhooks_tick(sender)
            return taken
        finally:
            await engine.close_pool()

    print(json.dumps(asyncio.run(once())))
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from command.demo import print_welcome, seed
    from tables.migrate import migrate
    from web.app import create_app
    from web.http_protocol import JsonErrorsProtocol
    from worker.embedded import Embedded

    _bind(settings)
    asyncio.run(migrate())
    demo = asyncio.run(seed())
    print_welcome(demo, f"http://{args.host}:{args.port}", settings)
    embedded = Embedded(settings)
    app = create_app(settings, sender=embedded.sender, extra_lifespans=[embedded.lifespan])
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, http=JsonErrorsProtocol)
    return 0


def _sqlite_file(settings: Settings, args: argparse.Namespace, command: str) -> Path | None:
    from tables.engine import sqlite_path

    url = args.database or settings.database_url
    if not url.startswith("sqlite:"):
        print(
            f"tenure {command} is for the embedded mode's SQLite database; for PostgreSQL use "
            "pg_basebackup with WAL archiving, or pg_dump (deploy/README.md, Backups)",
            file=sys.stderr,
        )
        return None
    return Path(sqlite_path(url))


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    """A consistent copy of the SQLite database while tenure runs, with its key file."""
    from tables import backups

    database = _sqlite_file(settings, args, "backup")
    if database is None:
        return 2
    try:
        copied = backups.backup(database, Path(args.path), overwrite=args.force, with_key=not settings.secret_key)
    except backups.BackupProblem as exc:
        print(f"tenure backup: {exc}", file=sys.stderr)
        return 2
    print(f"backed up {database} to {copied.database} ({copied.bytes} bytes)")
    if copied.key_file:
        print(f"its secret key: {copied.key_file} (keep it with the backup, as private as the database)")
    else:
        print("its secret key is TENURE_SECRET_KEY: keep that setting with the backup")
    return 0


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    """Puts a backup in place of the SQLite database; refuses while tenure serves it (--force)."""
    from tables import backups

    database = _sqlite_file(settings, args, "restore")
    if database is None:
        return 2
    try:
        restored = backups.restore(Path(args.path), database, force=args.force)
    except backups.BackupProblem as exc:
        print(f"tenure restore: {exc}", file=sys.stderr)
        return 2
    print(f"restored {args.path} to {restored.database}")
    for path in restored.kept:
        print(f"kept what it replaced: {path}")
    if restored.key_file:
        print(f"with its secret key: {restored.key_file}")
    print("start tenure again (`tenure migrate` first if the backup is from an older release)")
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
    sub.add_parser(
        "sweep",
        help="run the scheduler's jobs once, now, and exit (after an outage; "
        "to rehearse time, advance a sandbox's test clock)",
    )
    web = sub.add_parser("web", help="serve the HTTP API")
    web.add_argument("--host", default="127.0.0.1")
    web.add_argument("--port", type=int, default=8000)
    web.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY") or 1),
        help="processes serving the port (default 1, or WEB_CONCURRENCY); about one per core",
    )
    backup = sub.add_parser("backup", help="copy the SQLite database (and its key file) while tenure runs")
    backup.add_argument("path", help="the backup file to write (its key beside it, PATH.key)")
    backup.add_argument(
        "--database", help=f"sqlite:///... (default TENURE_DATABASE_URL; the demo's: {DEMO_DATABASE_URL})"
    )
    backup.add_argument("--force", action="store_true", help="replace PATH if it exists")
    restore = sub.add_parser("restore", help="put a backup in place of the SQLite database")
    restore.add_argument("path", help="a file written by `tenure backup` (PATH.key beside it is restored too)")
    restore.add_argument("--database", help="sqlite:///... (default TENURE_DATABASE_URL)")
    restore.add_argument(
        "--force",
        action="store_true",
        help="replace the database even while a tenure process serves it (restart it after)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from worker.logs import configure

    settings = Settings.from_env()
    configure(level=settings.log_level)
    if args.command == "demo" and "TENURE_DATABASE_URL" not in os.environ:
        settings = msgspec.structs.replace(settings, database_url=DEMO_DATABASE_URL)
    if args.command in NEEDS_SECRET_KEY:
        from tables import secrets_at_rest

        try:
            secrets_at_rest.configure(settings)
        except secrets_at_rest.SecretKeyProblem as exc:
            print(f"tenure {args.command}: {exc}", file=sys.stderr)
            return 2
    if args.command in SERVES_DATABASE and settings.is_sqlite:
        from tables import backups
        from tables.engine import sqlite_path

        backups.hold(Path(sqlite_path(settings.database_url)))
    handlers = {
        "demo": cmd_demo,
        "migrate": cmd_migrate,
        "web": cmd_web,
        "worker": cmd_worker,
        "scheduler": cmd_scheduler,
        "sweep": cmd_sweep,
        "backup": cmd_backup,
        "restore": cmd_restore,
    }
    return handlers[args.command](settings, args)


if __name__ == "__main__":
    sys.exit(main())
