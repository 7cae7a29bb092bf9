from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import BigInt
from piccolo.columns.column_types import Timestamptz
from piccolo.columns.column_types import Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.indexes import IndexMethod
from piccolo.engine import engine_finder

ID = "2026-12-02T13:48:29:472450"
VERSION = "1.38.0"
DESCRIPTION = "retention: job leases, deletion counts, indexes to find expired rows"


# The idempotency keys still set, by age: retention clears the oldest ones in batches
# (a partial index: the keys it already cleared are not in it, so nothing is scanned twice).
IDEM_KEY_INDEX = (
    "CREATE INDEX IF NOT EXISTS operations_created_at_idem_key_set "
    "ON operations (created_at) WHERE idem_key IS NOT NULL"
)


async def create_idem_key_index():
    await engine_finder().run_ddl(IDEM_KEY_INDEX)


async def drop_idem_key_index():
    await engine_finder().run_ddl("DROP INDEX IF EXISTS operations_created_at_idem_key_set")


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="tenure", description=DESCRIPTION
    )
    manager.add_raw(create_idem_key_index)
    manager.add_raw_backwards(drop_idem_key_index)

    manager.add_table(
        class_name="JobLease", tablename="job_leases", schema=None, columns=None
    )

    manager.add_table(
        class_name="RetentionCount",
        tablename="retention_counts",
        schema=None,
        columns=None,
    )

    manager.add_column(
        table_class_name="JobLease",
        tablename="job_leases",
        column_name="job",
        db_column_name="job",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 40,
            "default": "",
            "null": False,
            "primary_key": True,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="JobLease",
        tablename="job_leases",
        column_name="holder",
        db_column_name="holder",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 40,
            "default": "",
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="JobLease",
        tablename="job_leases",
        column_name="leased_until",
        db_column_name="leased_until",
        column_class_name="Timestamptz",
        column_class=Timestamptz,
        params={
            "default": TimestamptzNow(),
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="RetentionCount",
        tablename="retention_counts",
        column_name="name",
        db_column_name="name",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 40,
            "default": "",
            "null": False,
            "primary_key": True,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="RetentionCount",
        tablename="retention_counts",
        column_name="deleted",
        db_column_name="deleted",
        column_class_name="BigInt",
        column_class=BigInt,
        params={
            "default": 0,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.alter_column(
        table_class_name="Operation",
        tablename="operations",
        column_name="finished_at",
        db_column_name="finished_at",
        params={"index": True},
        old_params={"index": False},
        column_class=Timestamptz,
        old_column_class=Timestamptz,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Event",
        tablename="events",
        column_name="operation_id",
        db_column_name="operation_id",
        params={"index": True},
        old_params={"index": False},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Delivery",
        tablename="deliveries",
        column_name="event_id",
        db_column_name="event_id",
        params={"index": True},
        old_params={"index": False},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Delivery",
        tablename="deliveries",
        column_name="updated_at",
        db_column_name="updated_at",
        params={"index": True},
        old_params={"index": False},
        column_class=Timestamptz,
        old_column_class=Timestamptz,
        schema=None,
    )

    manager.alter_column(
        table_class_name="DeliveryAttempt",
        tablename="delivery_attempts",
        column_name="attempted_at",
        db_column_name="attempted_at",
        params={"index": True},
        old_params={"index": False},
        column_class=Timestamptz,
        old_column_class=Timestamptz,
        schema=None,
    )

    return manager
