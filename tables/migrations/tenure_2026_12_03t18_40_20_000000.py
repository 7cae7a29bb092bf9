"""Every row that names an organization, an event or a delivery references it by a foreign key
(ON DELETE RESTRICT): operations, events, ledger entries, activity, inbound secrets, balances,
tier states and test clocks -> organizations; deliveries -> events; delivery attempts ->
deliveries. (Deliveries keep their endpoint's id as history, cancelled, once the endpoint is
deleted, and operations, events and ledger lines keep a product's id: those stay plain ids.)

PostgreSQL adds the constraints (Piccolo's alter_column); each validates the table's rows.
SQLite cannot add a constraint to a table, so there each table is rebuilt with it, as SQLite
documents (create the new table, copy the rows, drop the old one, rename, recreate its
indexes), events before deliveries before their attempts, and the alter is skipped.
A row whose target is missing makes the migration fail on both backends, naming it.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import OnDelete, OnUpdate
from piccolo.columns.column_types import ForeignKey, Varchar
from piccolo.columns.indexes import IndexMethod
from piccolo.engine import engine_finder
from piccolo.querystring import QueryString
from piccolo.table import Table

ID = "2026-12-03T18:40:20:000000"
VERSION = "1.38.0"
DESCRIPTION = "rows naming an organization, an event or a delivery reference it"


def _target(class_name: str, tablename: str) -> type[Table]:
    class Target(Table, tablename=tablename, schema=None):
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

    Target.__name__ = class_name
    Target._meta.tablename = tablename
    return Target


Organization = _target("Organization", "organizations")
Event = _target("Event", "events")
Delivery = _target("Delivery", "deliveries")

NOT_NULL = "VARCHAR(40) NOT NULL DEFAULT ''"
# (class, table, column, its SQLite definition, target): in the order SQLite rebuilds them.
REFERENCES = [
    ("Operation", "operations", "organization_id", NOT_NULL, Organization),
    ("Event", "events", "organization_id", NOT_NULL, Organization),
    ("LedgerEntry", "ledger_entries", "organization_id", "VARCHAR(40) DEFAULT null", Organization),
    ("Activity", "activity", "organization_id", NOT_NULL, Organization),
    ("InboundSecret", "inbound_secrets", "organization_id", NOT_NULL, Organization),
    ("Balance", "balances", "organization_id", "VARCHAR(40) PRIMARY KEY NOT NULL DEFAULT ''", Organization),
    ("TierState", "tier_states", "organization_id", "VARCHAR(40) PRIMARY KEY NOT NULL DEFAULT ''", Organization),
    ("TestClock", "test_clocks", "organization_id", "VARCHAR(40) PRIMARY KEY NOT NULL DEFAULT ''", Organization),
    ("Delivery", "deliveries", "event_id", NOT_NULL, Event),
    ("DeliveryAttempt", "delivery_attempts", "delivery_id", NOT_NULL, Delivery),
]


def _is_sqlite() -> bool:
    return engine_finder().engine_type == "sqlite"


async def _rebuild(table: str, column: str, definition: str, target: type[Table]) -> None:
    db = engine_finder()
    (found,) = await db.run_querystring(
        QueryString("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = {}", table)
    )
    indexes = await db.run_querystring(
        QueryString("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = {} AND sql IS NOT NULL", table)
    )
    create = found["sql"]
    current = f'"{column}" {definition}'
    if create.count(current) != 1:
        raise RuntimeError(f"unexpected definition of {table}: {create}")
    reference = f' REFERENCES "{target._meta.tablename}" ("id") ON UPDATE CASCADE ON DELETE RESTRICT'
    create = create.replace(current, current + reference).replace(f'"{table}"', f'"{table}__new"', 1)
    for statement in [
        create,
        f'INSERT INTO "{table}__new" SELECT * FROM "{table}"',
        f'DROP TABLE "{table}"',
        f'ALTER TABLE "{table}__new" RENAME TO "{table}"',
        *[index["sql"] for index in indexes],
    ]:
        await db.run_querystring(QueryString(statement))
    missing = await db.run_querystring(QueryString(f'PRAGMA foreign_key_check("{table}")'))
    if missing:
        raise RuntimeError(f"{table}.{column} names rows missing from {target._meta.tablename}: {missing[:5]}")


async def _rebuild_on_sqlite() -> None:
    if _is_sqlite():
        for _, table, column, definition, target in REFERENCES:
            await _rebuild(table, column, definition, target)


class _Manager(MigrationManager):
    async def _run_alter_columns(self, backwards: bool = False):
        if not _is_sqlite():  # on SQLite the rebuild above added the constraints
            await super()._run_alter_columns(backwards=backwards)


async def forwards():
    manager = _Manager(migration_id=ID, app_name="tenure", description=DESCRIPTION)
    manager.add_raw(_rebuild_on_sqlite)
    for class_name, table, column, _, target in REFERENCES:
        manager.alter_column(
            table_class_name=class_name,
            tablename=table,
            column_name=column,
            db_column_name=column,
            params={
                "references": target,
                "on_delete": OnDelete.restrict,
                "on_update": OnUpdate.cascade,
                "target_column": None,
            },
            old_params={"references": None, "on_delete": None, "on_update": None, "target_column": None},
            column_class=ForeignKey,
            old_column_class=Varchar,
            schema=None,
        )
    return manager
