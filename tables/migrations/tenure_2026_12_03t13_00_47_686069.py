from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from enum import Enum
from piccolo.columns.column_types import Varchar

ID = "2026-12-03T13:00:47:686069"
VERSION = "1.38.0"
DESCRIPTION = "statuses and states as enum choices (the columns do not change)"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="tenure", description=DESCRIPTION
    )

    manager.alter_column(
        table_class_name="Client",
        tablename="clients",
        column_name="status",
        db_column_name="status",
        params={
            "choices": Enum(
                "ClientStatus", {"ACTIVE": "active", "RELEASED": "released"}
            )
        },
        old_params={
            "choices": Enum(
                "ClientStatus", {"active": "active", "released": "released"}
            )
        },
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Product",
        tablename="products",
        column_name="state",
        db_column_name="state",
        params={
            "choices": Enum(
                "ProductState",
                {
                    "ACTIVE": "active",
                    "GRACE": "grace",
                    "REDEMPTION": "redemption",
                    "PENDING_DELETE": "pending_delete",
                    "DELETED": "deleted",
                },
            )
        },
        old_params={"choices": None},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Operation",
        tablename="operations",
        column_name="status",
        db_column_name="status",
        params={
            "choices": Enum(
                "OperationStatus",
                {
                    "PENDING": "pending",
                    "RUNNING": "running",
                    "SUCCEEDED": "succeeded",
                    "FAILED": "failed",
                },
            )
        },
        old_params={
            "choices": Enum(
                "OperationStatus",
                {
                    "pending": "pending",
                    "running": "running",
                    "succeeded": "succeeded",
                    "failed": "failed",
                },
            )
        },
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Delivery",
        tablename="deliveries",
        column_name="status",
        db_column_name="status",
        params={
            "choices": Enum(
                "DeliveryStatus",
                {
                    "PENDING": "pending",
                    "SUCCEEDED": "succeeded",
                    "FAILED": "failed",
                    "CANCELLED": "cancelled",
                },
            )
        },
        old_params={"choices": None},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    return manager
