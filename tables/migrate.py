"""Runs Piccolo's migrations forwards on the bound engine, then encrypts what is still in clear."""

from __future__ import annotations

import asyncio
import os
import sqlite3

from tables import engine


class MigrationFailed(RuntimeError):
    """Piccolo reported a migration that did not apply; the message says which."""


async def migrate() -> int:
    """Applies the migrations; moves API keys still in `accounts.key_hash` to `api_keys`; then seals secrets stored in clear (rows from before
    encryption at rest) or under an older TENURE_SECRET_KEY. Answers how many it sealed."""
    os.environ.setdefault("PICCOLO_CONF", "tables.piccolo_conf")
    from piccolo.apps.migrations.commands.forwards import run_forwards

    from runtime.clock import clock
    from tables import api_keys, secrets_at_rest

    result = await run_forwards(app_name="tenure", migration_id="all")
    if not result.success:
        raise MigrationFailed(result.message)
    async with engine.transaction():
        await api_keys.carry_over_account_keys(clock.now())
    sealed = await secrets_at_rest.seal_clear_rows()
    if sealed and engine.is_sqlite():
        # The replaced values linger in free pages and in the WAL until they are rewritten.
        await asyncio.to_thread(_compact, engine.current().path)
    return sealed


def _compact(path: str) -> None:
    conn = sqlite3.connect(path, timeout=engine.SQLITE_BUSY_TIMEOUT_S, isolation_level=None)
    try:
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
