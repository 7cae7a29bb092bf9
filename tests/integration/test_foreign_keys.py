"""Rows that point at another table's row through a foreign key: the database refuses one whose
target is missing, on each backend."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest

from runtime.clock import clock
from tables import organizations, webhooks
from tables.activity import Activity
from tables.events import Event
from tables.inbound import InboundSecret
from tables.ledger import Balance, LedgerEntry
from tables.operations import Operation
from tables.test_clocks import TestClock
from tables.tier_states import TierState
from tables.webhooks import Delivery, DeliveryAttempt
from tests.integration.flows import db


def test_a_webhook_endpoint_belongs_to_an_organization_that_exists(database_url):
    org = db(organizations.create("Reseller", True, "EUR", clock.now()))
    made = db(webhooks.create_endpoint(org.id, "https://hooks.example/a", frozenset(), "whsec_a", clock.now()))
    assert [e.id for e in db(webhooks.endpoints_of(org.id))] == [made.id]

    with pytest.raises((sqlite3.IntegrityError, asyncpg.ForeignKeyViolationError)):
        db(webhooks.create_endpoint("org_missing", "https://hooks.example/b", frozenset(), "whsec_b", clock.now()))
    assert db(webhooks.endpoints_of("org_missing")) == []


MISSING = "org_missing"
# Each table whose rows name an organization, with the least a row of it needs.
NAMING_AN_ORGANIZATION = [
    (Operation, {"id": "op_fk", "kind": "purchase"}),
    (Event, {"id": "evt_fk", "type": "product.purchased"}),
    (LedgerEntry, {"id": "led_fk", "txn_id": "txn_fk", "book": "prepaid", "amount": 100, "currency": "EUR"}),
    (Activity, {"id": "act_fk", "kind": "operation.accepted", "actor_type": "system", "actor_id": "system"}),
    (InboundSecret, {"id": "ins_fk"}),
    (Balance, {}),
    (TierState, {}),
    (TestClock, {}),
]


@pytest.mark.parametrize(("table", "row"), NAMING_AN_ORGANIZATION, ids=lambda v: getattr(v, "__name__", ""))
def test_a_row_naming_an_organization_is_refused_unless_it_exists(database_url, table, row):
    with pytest.raises((sqlite3.IntegrityError, asyncpg.ForeignKeyViolationError)):
        db(table.insert(table(**row, organization_id=MISSING)).run())
    assert db(table.count().where(table.organization_id == MISSING).run()) == 0

    org = db(organizations.create("Reseller", True, "EUR", clock.now()))
    if table in (Balance, TierState):  # opened with the organization
        db(table.delete().where(table.organization_id == org.id).run())
    db(table.insert(table(**row, organization_id=org.id)).run())
    assert db(table.count().where(table.organization_id == org.id).run()) == 1


def test_a_delivery_names_an_event_and_an_attempt_a_delivery_that_exist(database_url):
    now = clock.now()
    org = db(organizations.create("Reseller", True, "EUR", now))
    delivery = {"id": "dlv_fk", "endpoint_id": "whe_fk", "delivery_key": "whe_fk:evt_fk", "created_at": now}
    with pytest.raises((sqlite3.IntegrityError, asyncpg.ForeignKeyViolationError)):
        db(Delivery.insert(Delivery(**delivery, event_id="evt_missing")).run())
    with pytest.raises((sqlite3.IntegrityError, asyncpg.ForeignKeyViolationError)):
        db(DeliveryAttempt.insert(DeliveryAttempt(id="dat_fk", delivery_id="dlv_fk", attempted_at=now)).run())

    db(Event.insert(Event(id="evt_fk", type="product.purchased", organization_id=org.id)).run())
    db(Delivery.insert(Delivery(**delivery, event_id="evt_fk")).run())
    db(DeliveryAttempt.insert(DeliveryAttempt(id="dat_fk", delivery_id="dlv_fk", attempted_at=now)).run())
    assert db(DeliveryAttempt.count().where(DeliveryAttempt.delivery_id == "dlv_fk").run()) == 1
    # An event is not deleted while a delivery carries it (retention deletes the delivery first).
    with pytest.raises((sqlite3.IntegrityError, asyncpg.ForeignKeyViolationError)):
        db(Event.delete().where(Event.id == "evt_fk").run())
