"""webhook_endpoints.organization_id becomes a foreign key to organizations (ON DELETE
RESTRICT: an organization is never deleted with endpoints left).

PostgreSQL adds the constraint (Piccolo's alter_column). SQLite cannot add a constraint to
a table, so there the table is rebuilt with it, as SQLite documents (create the new table,
copy the rows, drop the old one, rename, recreate its indexes), and the alter is skipped.
An endpoint whose organization is missing makes the migration fail on both backends.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import OnDelete
from piccolo.columns.base import OnUpdate
from piccolo.columns.column_types import ForeignKey
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod
from piccolo.engine import engine_finder
from piccolo.querystring import QueryString
from piccolo.table import Table


class Organization(Table, tablename="organizations", schema=None):
    id = Varchar(
        length=40,
        default="",
        null=False,
        primary_key=True,
        unique=False,
        index=False,
        index_method=IndexMethod.btree,
        choices=None,
        db_column_name=None,
        secret=False,
    )


ID = "2026-12-03T13:06:28:904385"
VERSION = "1.38.0"
DESCRIPTION = "webhook_endpoints.organization_id references organizations"


TABLE = "webhook_endpoints"
COLUMN = '"organization_id" VARCHAR(40) NOT NULL DEFAULT \'\''
REFERENCE = ' REFERENCES "organizations" ("id") ON UPDATE CASCADE ON DELETE RESTRICT'


def _is_sqlite() -> bool:
    return engine_finder().engine_type == "sqlite"


async def _rebuild_on_sqlite() -> None:
    if not _is_sqlite():
        return
    db = engine_finder()
    (table,) = await db.run_querystring(
        QueryString("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = {}", TABLE)
    )
    indexes = await db.run_querystring(
        QueryString("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = {} AND sql IS NOT NULL", TABLE)
    )
    create = table["sql"]
    if create.count(COLUMN) != 1:
        raise RuntimeError(f"unexpected definition of {TABLE}: {create}")
    create = create.replace(COLUMN, COLUMN + REFERENCE).replace(f'"{TABLE}"', f'"{TABLE}__new"', 1)
    for statement in [
        create,
        f'INSERT INTO "{TABLE}__new" SELECT * FROM "{TABLE}"',
        f'DROP TABLE "{TABLE}"',
        f'ALTER TABLE "{TABLE}__new" RENAME TO "{TABLE}"',
        *[index["sql"] for index in indexes],
    ]:
        await db.run_querystring(QueryString(statement))


class _Manager(MigrationManager):
    async def _run_alter_columns(self, backwards: bool = False):
        if not _is_sqlite():  # on SQLite the rebuild above added the constraint
            await super()._run_alter_columns(backwards=backwards)


async def forwards():
    manager = _Manager(migration_id=ID, app_name="tenure", description=DESCRIPTION)
    manager.add_raw(_rebuild_on_sqlite)

    manager.alter_column(
        table_class_name="WebhookEndpoint",
        tablename="webhook_endpoints",
        column_name="organization_id",
        db_column_name="organization_id",
        params={
            "references": Organization,
            "on_delete": OnDelete.restrict,
            "on_update": OnUpdate.cascade,
            "target_column": None,
        },
        old_params={
            "references": None,
            "on_delete": None,
            "on_update": None,
            "target_column": None,
        },
        column_class=ForeignKey,
        old_column_class=Varchar,
        schema=None,
    )

    return manager
