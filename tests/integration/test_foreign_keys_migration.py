"""The upgrade that adds foreign keys keeps every row a database already holds, and then refuses
a row naming something missing; a database already holding such a row stops the upgrade,
naming the table, with nothing of it applied. On each backend."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from tables import engine
from tables.organizations import Organization
from tests import databases
from tests.conftest import BACKENDS
from tests.integration.old_databases import database_before

# The last migration before the foreign keys.
BEFORE_FOREIGN_KEYS = "2026-12-03T15:44:12:371144"

ROWS = {
    "organizations": ("id, name", "'org_a', 'Reseller'"),
    "operations": ("id, kind, organization_id", "'op_a', 'purchase', 'org_a'"),
    "events": ("id, type, organization_id", "'evt_a', 'product.purchased', 'org_a'"),
    "ledger_entries": (
        "id, txn_id, book, organization_id, amount, currency",
        "'led_a', 'txn_a', 'prepaid', 'org_a', 5, 'EUR'",
    ),
    "activity": ("id, organization_id, kind", "'act_a', 'org_a', 'operation.accepted'"),
    "inbound_secrets": ("id, organization_id", "'ins_a', 'org_a'"),
    "balances": ("organization_id, prepaid", "'org_a', 700"),
    "tier_states": ("organization_id, tier", "'org_a', 'B'"),
    "test_clocks": ("organization_id", "'org_a'"),
    "deliveries": ("id, endpoint_id, event_id, delivery_key", "'dlv_a', 'whe_gone', 'evt_a', 'whe_gone:evt_a'"),
    "delivery_attempts": ("id, delivery_id", "'dat_a', 'dlv_a'"),
}
REFUSED = (sqlite3.IntegrityError, asyncpg.ForeignKeyViolationError)


def run(sql: str):
    return asyncio.run(Organization.raw(sql).run())


def insert(table: str, columns: str, values: str) -> None:
    run(f"INSERT INTO {table} ({columns}) VALUES ({values})")


@pytest.fixture(params=BACKENDS)
def old_database_url(request, tmp_path: Path):
    with database_before(request.param, BEFORE_FOREIGN_KEYS, tmp_path, "foreign_keys") as url:
        engine.bind(engine.for_url(url))
        databases.configure_secrets(url)
        yield url


def test_the_upgrade_keeps_every_row_and_then_refuses_one_naming_a_missing_organization(old_database_url):
    for table, (columns, values) in ROWS.items():
        insert(table, columns, values)

    databases.run_migrate(old_database_url)

    engine.bind(engine.for_url(old_database_url))
    for table in ROWS:
        assert run(f"SELECT count(*) AS n FROM {table}")[0]["n"] == 1, table
    assert run("SELECT prepaid FROM balances")[0]["prepaid"] == 700
    assert run("SELECT event_id FROM deliveries")[0]["event_id"] == "evt_a"
    with pytest.raises(REFUSED):
        insert("operations", "id, kind, organization_id", "'op_b', 'purchase', 'org_missing'")
    with pytest.raises(REFUSED):
        insert("delivery_attempts", "id, delivery_id", "'dat_b', 'dlv_missing'")


def test_a_row_naming_a_missing_organization_stops_the_upgrade_with_nothing_applied(old_database_url):
    insert("organizations", "id, name", "'org_a', 'Reseller'")
    insert("operations", "id, kind, organization_id", "'op_a', 'purchase', 'org_a'")
    insert("events", "id, type, organization_id", "'evt_orphan', 'product.purchased', 'org_deleted_by_hand'")

    with pytest.raises(RuntimeError, match="events"):
        databases.run_migrate(old_database_url)

    engine.bind(engine.for_url(old_database_url))
    # Nothing applied: the tables take a row naming nothing, as before the upgrade.
    insert("operations", "id, kind, organization_id", "'op_b', 'purchase', 'org_missing'")
    assert {r["id"] for r in run("SELECT id FROM events")} == {"evt_orphan"}
