"""Rows that point at another table's row through a foreign key: the database refuses one whose
target is missing, on each backend."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest

from runtime.clock import clock
from tables import organizations, webhooks
from tests.integration.flows import db


def test_a_webhook_endpoint_belongs_to_an_organization_that_exists(database_url):
    org = db(organizations.create("Reseller", True, "EUR", clock.now()))
    made = db(webhooks.create_endpoint(org.id, "https://hooks.example/a", frozenset(), "whsec_a", clock.now()))
    assert [e.id for e in db(webhooks.endpoints_of(org.id))] == [made.id]

    with pytest.raises((sqlite3.IntegrityError, asyncpg.ForeignKeyViolationError)):
        db(webhooks.create_endpoint("org_missing", "https://hooks.example/b", frozenset(), "whsec_b", clock.now()))
    assert db(webhooks.endpoints_of("org_missing")) == []
