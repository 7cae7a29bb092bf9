"""What accepting a purchase costs the database: counted statements, on PostgreSQL.

With the caller's key and membership in the access cache, a purchase is recorded by one
statement (the operation, its name check and its activity row); a replayed Idempotency-Key
is found by the same statement's conflict, then read back. Statements are counted at the
driver (every query asyncpg sends, BEGIN and COMMIT included), per task, leaving out the
background tasks (the metrics refresher, the outbox)."""

from __future__ import annotations

import asyncio
from contextlib import contextmanager

import asyncpg.connection
import pytest
from litestar.testing import TestClient

from runtime.settings import Settings
from tests.api import builders
from tests.ratelimits import UNLIMITED
from web.app import create_app
from web.metrics import REFRESHER_TASK

BACKGROUND = {REFRESHER_TASK, "tenure-outbox"}


@contextmanager
def statements_sent(monkeypatch):
    """The statements sent to PostgreSQL meanwhile by request handling (not background tasks)."""
    seen: list[str] = []
    do_execute = asyncpg.connection.Connection._do_execute
    execute = asyncpg.connection.Connection.execute

    def note(query: str) -> None:
        task = asyncio.current_task()
        if task is None or task.get_name() not in BACKGROUND:
            seen.append(query)

    async def counted_do_execute(self, query, *args, **kwargs):  # every prepared statement
        note(query)
        return await do_execute(self, query, *args, **kwargs)

    async def counted_execute(self, query, *args, **kwargs):  # plain ones (BEGIN, COMMIT, resets)
        if not args:
            note(query)
        return await execute(self, query, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(asyncpg.connection.Connection, "_do_execute", counted_do_execute)
        patch.setattr(asyncpg.connection.Connection, "execute", counted_execute)
        yield seen


@pytest.fixture
def client(database_url):
    if not database_url.startswith("postgres"):
        pytest.skip("counts PostgreSQL statements")
    # An access cache that outlives the test, whatever the machine's speed.
    settings = Settings(database_url=database_url, ops_token="ops-secret", auth_cache_seconds=600, **UNLIMITED)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def buy(client, owner, org, name, **headers):
    return client.post(
        f"/v1/organizations/{org}/purchases",
        headers={**owner.auth, **headers},
        json={"kind": "domain", "name": name, "years": 1, "payment_method": "prepaid"},
    )


def test_a_purchase_is_accepted_in_one_statement_once_its_caller_is_known(client, monkeypatch):
    owner = builders.person(client)
    org = builders.organization(client, owner)
    assert buy(client, owner, org, "warm-up.fr").status_code == 202  # the key and membership are read

    with statements_sent(monkeypatch) as plain:
        answer = buy(client, owner, org, "one-statement.fr")
    with statements_sent(monkeypatch) as keyed:
        keyed_answer = buy(client, owner, org, "keyed.fr", **{"Idempotency-Key": "k-1"})

    assert answer.status_code == 202, answer.text
    assert keyed_answer.status_code == 202, keyed_answer.text
    assert len(plain) == 1 and plain[0].startswith("WITH op AS (INSERT INTO operations"), plain
    assert len(keyed) == 1, keyed


def test_a_replayed_key_is_found_by_the_accepting_statement(client, monkeypatch):
    owner = builders.person(client)
    org = builders.organization(client, owner)
    first = buy(client, owner, org, "replayed.fr", **{"Idempotency-Key": "k-2"})

    with statements_sent(monkeypatch) as replay:
        again = buy(client, owner, org, "replayed.fr", **{"Idempotency-Key": "k-2"})

    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    assert len(replay) == 2, replay  # the insert that found the key taken, then its operation
