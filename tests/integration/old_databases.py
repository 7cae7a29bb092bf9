"""Databases of their own, migrated only up to a given migration: the state a deployed
database was in before an upgrade, for the tests that run the upgrade on rows it holds."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import asyncpg

from tests import databases


def migrate_up_to(url: str, migration_id: str) -> None:
    """Piccolo's migrations up to `migration_id`, in a process of their own (as `tenure migrate`)."""
    script = (
        "import asyncio, sys\n"
        "from piccolo.apps.migrations.commands.forwards import run_forwards\n"
        "done = asyncio.run(run_forwards(app_name='tenure', migration_id=sys.argv[1]))\n"
        "sys.exit(0 if done.success else done.message)\n"
    )
    env = {**os.environ, "TENURE_DATABASE_URL": url, "PICCOLO_CONF": "tables.piccolo_conf"}
    done = subprocess.run(
        [sys.executable, "-c", script, migration_id], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(databases.POSTGRES_URL, timeout=5)
    try:
        for statement in sql.split(";"):
            await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def database_before(backend: str, migration_id: str, tmp_path: Path, suffix: str) -> Iterator[str]:
    """An empty database of its own (`suffix` names it on PostgreSQL), migrated up to `migration_id`."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / f'{suffix}.sqlite3'}"
        migrate_up_to(url, migration_id)
        yield url
        return
    name = urlparse(databases.POSTGRES_URL).path.lstrip("/") + f"_{suffix}"
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE); CREATE DATABASE "{name}"'))
    url = urlunparse(urlparse(databases.POSTGRES_URL)._replace(path=f"/{name}"))
    try:
        migrate_up_to(url, migration_id)
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
