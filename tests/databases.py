"""Real databases for the tests: a migrated SQLite template file and a migrated PostgreSQL.

PostgreSQL must be reachable (TENURE_TEST_POSTGRES_URL, default the local `test`
database): when it is not, the tests fail; they never skip.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg
from cryptography.fernet import Fernet

from tables import secrets_at_rest
from tables.settings import Settings

POSTGRES_URL = os.environ.get("TENURE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TENURE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


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
        [sys.executable, "-m", "web.cli", "migrate"], env=env, capture_output=True, text=True, timeout=120
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


async def _reset_schema(url: str) -> None:
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
