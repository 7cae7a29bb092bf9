"""Real databases for the tests: a migrated SQLite template file and a migrated PostgreSQL.

PostgreSQL must be reachable (TENURE_TEST_POSTGRES_URL, default the local `test`
database): when it is not, the tests fail; they never skip.

Under pytest-xdist (scripts/test runs two workers) each worker has its own PostgreSQL
database (`test_gw0`, `test_gw1`, ..., created beside the configured one on its server) and
its own Redis DB (the configured number minus the worker's index: 15, 14, ...), so that
workers never see each other's rows, queues or rate-limit windows.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from cryptography.fernet import Fernet

from runtime.settings import Settings
from tables import secrets_at_rest

CONFIGURED_POSTGRES_URL = os.environ.get("TENURE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CONFIGURED_REDIS_URL = os.environ.get("TENURE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ... under pytest-xdist, else ""


def worker_index() -> int:
    return int(WORKER.removeprefix("gw")) if WORKER else 0


def _postgres_url_of_worker(url: str) -> str:
    if not WORKER:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"{parts.path}_{WORKER}"))


def _redis_url_of_worker(url: str) -> str:
    parts = urlsplit(url)
    db = int(parts.path.lstrip("/") or 0) - worker_index()
    if db < 0:
        raise RuntimeError(f"{url}: too few Redis DBs below it for pytest-xdist worker {WORKER}")
    return urlunsplit(parts._replace(path=f"/{db}"))


POSTGRES_URL = _postgres_url_of_worker(CONFIGURED_POSTGRES_URL)
REDIS_URL = _redis_url_of_worker(CONFIGURED_REDIS_URL)


@functools.cache
def secret_key() -> str:
    """TENURE_SECRET_KEY of this test session: every tenure process and the tests share it."""
    return Fernet.generate_key().decode()


def configure_secrets(url: str) -> None:
    """This process encrypts and reads stored secrets as the `tenure` processes do."""
    secrets_at_rest.configure(Settings(database_url=url, secret_key=secret_key()))


def run_migrate(url: str) -> None:
    """Runs `tenure migrate` as a separate process (the command operators run)."""
    env = {**os.environ, "TENURE_DATABASE_URL": url, "TENURE_SECRET_KEY": secret_key()}
    done = subprocess.run(
        [sys.executable, "-m", "command.main", "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"tenure migrate failed for {url}:\n{done.stdout}\n{done.stderr}")


def sqlite_template(directory: Path) -> Path:
    path = directory / "template.sqlite3"
    run_migrate(f"sqlite:///{path}")
    return path


def sqlite_copy(template: Path, directory: Path) -> str:
    target = directory / "tenure.sqlite3"
    shutil.copy(template, target)
    return f"sqlite:///{target}"


async def _create_database(url: str) -> None:
    """This worker's database, made on the configured database's server when missing."""
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(CONFIGURED_POSTGRES_URL, timeout=5)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    except asyncpg.DuplicateDatabaseError:
        pass
    finally:
        await conn.close()


async def _reset_schema(url: str) -> None:
    if url != CONFIGURED_POSTGRES_URL:
        await _create_database(url)
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()


def postgres_fresh() -> str:
    try:
        asyncio.run(_reset_schema(POSTGRES_URL))
    except (OSError, asyncpg.PostgresError) as exc:
        raise RuntimeError(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}") from exc
    run_migrate(POSTGRES_URL)
    return POSTGRES_URL


async def truncate_postgres(engine) -> None:
    from tables.registry import TABLES

    names = ", ".join(t._meta.tablename for t in TABLES)
    await engine._run_in_new_connection(f"TRUNCATE {names} CASCADE")
