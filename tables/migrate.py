"""Runs Piccolo's migrations forwards on the bound engine."""

from __future__ import annotations

import os


class MigrationFailed(RuntimeError):
    """Piccolo reported a migration that did not apply; the message says which."""


async def migrate() -> None:
    os.environ.setdefault("PICCOLO_CONF", "tables.piccolo_conf")
    from piccolo.apps.migrations.commands.forwards import run_forwards

    result = await run_forwards(app_name="tenure", migration_id="all")
    if not result.success:
        raise MigrationFailed(result.message)
