from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from enum import Enum
from piccolo.columns.column_types import Varchar

ID = "2026-12-03T15:44:12:371144"
VERSION = "1.38.0"
DESCRIPTION = "kinds and books as enum choices (the columns do not change)"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="tenure", description=DESCRIPTION
    )

    manager.alter_column(
        table_class_name="Product",
        tablename="products",
        column_name="kind",
        db_column_name="kind",
        params={
            "choices": Enum(
                "Kind",
                {
                    "DOMAIN": "domain",
                    "MAILBOX": "mailbox",
                    "HOSTING": "hosting",
                    "CERTIFICATE": "certificate",
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
        column_name="kind",
        db_column_name="kind",
        params={
            "choices": Enum(
                "OperationKind",
                {
                    "PURCHASE": "purchase",
                    "RENEWAL": "renewal",
                    "RENEWAL_BATCH": "renewal_batch",
                    "TRANSFER": "transfer",
                    "RELEASE": "release",
                    "CLIENT_UPSERT": "client_upsert",
                    "TEST_CLOCK": "test_clock",
                    "TOPUP": "topup",
                    "SETTLEMENT": "settlement",
                },
            )
        },
        old_params={"choices": None},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    manager.alter_column(
        table_class_name="LedgerEntry",
        tablename="ledger_entries",
        column_name="book",
        db_column_name="book",
        params={
            "choices": Enum(
                "Book",
                {
                    "PREPAID": "prepaid",
                    "INVOICE": "invoice",
                    "REVENUE": "revenue",
                    "CASH": "cash",
                },
            )
        },
        old_params={"choices": None},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    manager.alter_column(
        table_class_name="LedgerEntry",
        tablename="ledger_entries",
        column_name="kind",
        db_column_name="kind",
        params={
            "choices": Enum(
                "EntryKind",
                {
                    "TOPUP": "topup",
                    "SETTLEMENT": "settlement",
                    "PURCHASE": "purchase",
                    "RENEWAL": "renewal",
                    "RESTORE_FEE": "restore_fee",
                    "CHARGE": "charge",
                },
            )
        },
        old_params={"choices": None},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    manager.alter_column(
        table_class_name="LedgerEntry",
        tablename="ledger_entries",
        column_name="product_kind",
        db_column_name="product_kind",
        params={
            "choices": Enum(
                "Kind",
                {
                    "DOMAIN": "domain",
                    "MAILBOX": "mailbox",
                    "HOSTING": "hosting",
                    "CERTIFICATE": "certificate",
                },
            )
        },
        old_params={"choices": None},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )

    return manager
