from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-12-02T14:05:17:894602"
VERSION = "1.38.0"
DESCRIPTION = "indexes for portfolio and operation lists"

# Composite indexes Piccolo's columns cannot declare: each list is read within one
# organization, in keyset order (sort key, id), so every filter starts from an index.
INDEXES = {
    "products_organization_id_idx": "products (organization, id)",
    "products_organization_expires_at_idx": "products (organization, expires_at, id)",
    "products_organization_name_idx": "products (organization, name, id)",
    "products_organization_created_at_idx": "products (organization, created_at, id)",
    "clients_reseller_name_idx": "clients (reseller, name, id)",
    "clients_reseller_created_at_idx": "clients (reseller, created_at, id)",
    "operations_organization_created_at_idx": "operations (organization_id, created_at, id)",
}


class RawSQL(Table, tablename="products"):
    """Only runs this migration's statements, on the engine and transaction migrating."""


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="tenure", description=DESCRIPTION
    )

    async def create():
        for name, target in INDEXES.items():
            await RawSQL.raw(f"CREATE INDEX IF NOT EXISTS {name} ON {target}")

    async def drop():
        for name in INDEXES:
            await RawSQL.raw(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)

    return manager
