"""Backfill after the billing columns: what was invoiced before is owed, and ledger lines
get the kind of their operation (raw SQL that runs on SQLite and PostgreSQL)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-03T09:21:34:000000"
VERSION = "1.38.0"
DESCRIPTION = "billing: backfill owed and ledger line kinds"


class _Raw(Table, tablename="ledger_entries"):
    pass


async def _backfill() -> None:
    await _Raw.raw(
        "UPDATE balances SET owed = COALESCE((SELECT -SUM(amount) FROM ledger_entries "
        "WHERE book = 'invoice' AND organization_id = balances.organization_id), 0)")
    await _Raw.raw(
        "UPDATE ledger_entries SET kind = COALESCE((SELECT kind FROM operations "
        "WHERE operations.id = ledger_entries.operation_id), 'charge') WHERE kind = ''")


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tenure", description=DESCRIPTION)
    manager.add_raw(_backfill)
    return manager
