"""Lists as arrays (2 of 2): each space-separated list is copied into its array column, the
text column is dropped and the array column takes its name. A null list (an API key that does
not narrow) stays null; an empty one becomes an empty array. Piccolo writes the arrays: a
PostgreSQL array, JSON text in a column of type ARRAY on SQLite."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns import Array, Text, Varchar
from piccolo.table import Table

ID = "2026-12-03T12:50:05:000000"
VERSION = "1.38.0"
DESCRIPTION = "lists as arrays (2 of 2): carry the lists over, drop the text columns"


class _Team(Table, tablename="teams"):
    id = Varchar(length=40, primary_key=True)
    permissions = Text(null=True)
    permissions_list = Array(base_column=Varchar(length=60), null=True)


class _ApiKey(Table, tablename="api_keys"):
    id = Varchar(length=40, primary_key=True)
    organizations = Text(null=True)
    organizations_list = Array(base_column=Varchar(length=40), null=True)
    permissions = Text(null=True)
    permissions_list = Array(base_column=Varchar(length=60), null=True)


class _Endpoint(Table, tablename="webhook_endpoints"):
    id = Varchar(length=40, primary_key=True)
    event_types = Text(null=True)
    event_types_list = Array(base_column=Varchar(length=60), null=True)


# (table, text column, array column): one UPDATE per distinct text, so a few statements in all.
_LISTS = [
    (_Team, _Team.permissions, _Team.permissions_list),
    (_ApiKey, _ApiKey.organizations, _ApiKey.organizations_list),
    (_ApiKey, _ApiKey.permissions, _ApiKey.permissions_list),
    (_Endpoint, _Endpoint.event_types, _Endpoint.event_types_list),
]


async def _carry_over() -> None:
    for table, text, array in _LISTS:
        for row in await table.select(text).distinct():
            value = row[text._meta.name]
            if value is None:
                continue  # the array column is null already
            await table.update({array: sorted(set(value.split()))}).where(text == value)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tenure", description=DESCRIPTION)
    manager.add_raw(_carry_over)
    for table_class_name, tablename, column_name in [
        ("Team", "teams", "permissions"),
        ("ApiKey", "api_keys", "organizations"),
        ("ApiKey", "api_keys", "permissions"),
        ("WebhookEndpoint", "webhook_endpoints", "event_types"),
    ]:
        manager.drop_column(
            table_class_name=table_class_name, tablename=tablename, column_name=column_name, db_column_name=column_name
        )
        manager.rename_column(
            table_class_name=table_class_name,
            tablename=tablename,
            old_column_name=f"{column_name}_list",
            new_column_name=column_name,
            old_db_column_name=f"{column_name}_list",
            new_db_column_name=column_name,
        )
    return manager
