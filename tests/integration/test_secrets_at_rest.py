"""Webhook endpoint secrets and inbound secrets are encrypted at rest (TENURE_SECRET_KEY).

What a thief of the database (or of a dump) sees is read here with raw SQL, not through
tenure: no secret in clear. Signatures still verify both ways, a key rotation keeps
everything readable, and rows written in clear before the upgrade keep working until
`tenure migrate` encrypts them.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet

from runtime.settings import Settings
from tables import secrets_at_rest
from tables.engine import sqlite_path
from tables.inbound import InboundSecret
from tables.webhooks import WebhookEndpoint
from tests import databases
from tests.integration.flows import db, wait_done
from tests.integration.test_inbound import post, reseller, rotate, upsert
from tests.integration.test_webhooks_out import settle, subscribe


@pytest.fixture
def keys(database_url):
    """Switches this process's TENURE_SECRET_KEY; the session's key is put back after."""

    def use(value: str) -> None:
        secrets_at_rest.configure(Settings(database_url=database_url, secret_key=value))

    yield use
    databases.configure_secrets(database_url)


# --- reading the database as a thief would -----------------------------------------------------


def raw_rows(database_url: str) -> list[str]:
    """Every row of every table, as text, read with the driver (not tenure)."""
    if database_url.startswith("sqlite:"):
        conn = sqlite3.connect(sqlite_path(database_url))
        try:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return [repr(row) for name in names for row in conn.execute(f'SELECT * FROM "{name}"')]
        finally:
            conn.close()

    async def dump() -> list[str]:
        conn = await asyncpg.connect(database_url)
        try:
            names = [
                r["table_name"]
                for r in await conn.fetch(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                )
            ]
            return [r["row"] for name in names for r in await conn.fetch(f'SELECT t::text AS row FROM "{name}" t')]
        finally:
            await conn.close()

    return asyncio.run(dump())


def raw_bytes(database_url: str) -> bytes:
    """The SQLite database's files as they are on disk (empty for PostgreSQL)."""
    if not database_url.startswith("sqlite:"):
        return b""
    path = Path(sqlite_path(database_url))
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def assert_nowhere_in_clear(database_url: str, *secrets: str) -> None:
    rows, disk = raw_rows(database_url), raw_bytes(database_url)
    for secret in secrets:
        body = secret.removeprefix("whsec_")
        assert not [row for row in rows if body in row], "a secret is stored in clear"
        assert body.encode() not in disk and base64.b64decode(body) not in disk


def stored_secrets(table) -> list[dict]:
    return db(table.select(table.id, table.secret, table.sealed_secret).run())


def tenure_migrate(database_url: str, secret_key: str) -> str:
    env = {**os.environ, "TENURE_DATABASE_URL": database_url, "TENURE_SECRET_KEY": secret_key}
    done = subprocess.run(
        [sys.executable, "-m", "command.main", "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


# --- the flows the secrets serve ---------------------------------------------------------------


def outbound_signed_right(api, broker, sender, receiver, owner, org, path: str, name: str) -> None:
    """A purchase's events reach the endpoint, each signed with the endpoint's secret."""
    before = len(receiver.delivered(path))
    wait_done(
        api,
        owner,
        api.post(
            f"/v1/organizations/{org}/purchases",
            headers=owner.auth,
            json={"kind": "domain", "name": name, "years": 1, "payment_method": "prepaid"},
        ).json()["id"],
    )
    settle(broker, sender)
    assert receiver.rejected == []
    assert len(receiver.delivered(path)) == before + 2  # product.purchased, operation.succeeded


def inbound_accepted(api, org: str, secret: str, ref: str) -> None:
    answer = post(api, org, secret, upsert(ref))
    assert answer.status_code == 202, answer.text


# --- the tests -------------------------------------------------------------------------------


def test_no_webhook_or_inbound_secret_is_stored_in_clear_and_signatures_still_verify(
    api, workers, broker, sender, receiver, database_url
):
    workers()
    owner, org = reseller(api)
    outbound = subscribe(api, owner, org, receiver, "/hooks")
    first = rotate(api, owner, org)["secret"]
    inbound = rotate(api, owner, org)["secret"]  # the first one stays valid a day: two rows

    assert_nowhere_in_clear(database_url, receiver.secrets["/hooks"], first, inbound)
    for table in (WebhookEndpoint, InboundSecret):
        assert {row["secret"] for row in stored_secrets(table)} == {""}
        assert all(row["sealed_secret"].startswith("gAAAAA") for row in stored_secrets(table))

    outbound_signed_right(api, broker, sender, receiver, owner, org, "/hooks", "sealed.fr")
    inbound_accepted(api, org, inbound, "crm-1")
    inbound_accepted(api, org, first, "crm-2")
    assert post(api, org, "whsec_" + base64.b64encode(os.urandom(24)).decode(), upsert("crm-3")).status_code == 401
    assert [e["id"] for e in api.get(f"/v1/organizations/{org}/webhook-endpoints", headers=owner.auth).json()] == [
        outbound
    ]


def test_rotating_tenure_secret_key_keeps_every_secret_readable_and_migrate_moves_them_to_the_new_key(
    api, workers, broker, sender, receiver, database_url, keys
):
    workers()
    owner, org = reseller(api)
    subscribe(api, owner, org, receiver, "/hooks")
    inbound = rotate(api, owner, org)["secret"]
    old, new = databases.secret_key(), Fernet.generate_key().decode()
    sealed_before = {row["id"]: row["sealed_secret"] for row in stored_secrets(InboundSecret)}

    keys(f"{new},{old}")  # the operator's first step: the new key first, the old one second
    outbound_signed_right(api, broker, sender, receiver, owner, org, "/hooks", "rotated.fr")
    inbound_accepted(api, org, inbound, "crm-1")
    subscribe(api, owner, org, receiver, "/later")  # sealed under the new key

    tenure_migrate(database_url, f"{new},{old}")  # re-encrypts what the old key sealed
    after = {row["id"]: row["sealed_secret"] for row in stored_secrets(InboundSecret)}
    assert set(after) == set(sealed_before) and all(after[i] != sealed_before[i] for i in after)
    assert_nowhere_in_clear(database_url, inbound, *receiver.secrets.values())

    keys(new)  # the old key is gone: everything reads with the new one alone
    outbound_signed_right(api, broker, sender, receiver, owner, org, "/hooks", "after.fr")
    assert len(receiver.delivered("/later")) >= 2
    inbound_accepted(api, org, inbound, "crm-2")

    keys(old)  # and the old key alone reads nothing any more
    with pytest.raises(secrets_at_rest.UnreadableSecret):
        secrets_at_rest.secret_of(stored_secrets(InboundSecret)[0])


def test_secrets_stored_in_clear_before_the_upgrade_keep_working_and_migrate_encrypts_them(
    api, workers, broker, sender, receiver, database_url
):
    workers()
    owner, org = reseller(api)
    subscribe(api, owner, org, receiver, "/hooks")
    inbound = rotate(api, owner, org)["secret"]
    # As an upgraded database holds them: the clear column filled, the new one empty.
    db(
        WebhookEndpoint.update(
            {WebhookEndpoint.secret: receiver.secrets["/hooks"], WebhookEndpoint.sealed_secret: None}
        )
        .where(WebhookEndpoint.organization_id == org)
        .run()
    )
    db(
        InboundSecret.update({InboundSecret.secret: inbound, InboundSecret.sealed_secret: None})
        .where(InboundSecret.organization_id == org)
        .run()
    )

    outbound_signed_right(api, broker, sender, receiver, owner, org, "/hooks", "legacy.fr")
    inbound_accepted(api, org, inbound, "crm-1")

    with pytest.raises(AssertionError, match="stored in clear"):  # what the check is there to catch
        assert_nowhere_in_clear(database_url, inbound)
    tenure_migrate(database_url, databases.secret_key())
    assert_nowhere_in_clear(database_url, inbound, receiver.secrets["/hooks"])
    outbound_signed_right(api, broker, sender, receiver, owner, org, "/hooks", "sealed-now.fr")
    inbound_accepted(api, org, inbound, "crm-2")


def test_every_tenure_process_refuses_to_start_on_postgresql_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    env["TENURE_DATABASE_URL"] = databases.POSTGRES_URL
    env["TENURE_BROKER_URL"] = databases.REDIS_URL
    for command in ("migrate", "web", "worker", "scheduler", "sweep"):
        done = subprocess.run(
            [sys.executable, "-m", "command.main", command], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "TENURE_SECRET_KEY is not set" in done.stderr, (command, done.stderr)
    env["TENURE_SECRET_KEY"] = "not-a-key"
    done = subprocess.run(
        [sys.executable, "-m", "command.main", "web"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "key 1 of TENURE_SECRET_KEY is not a Fernet key" in done.stderr
    assert "not-a-key" not in done.stderr


def test_a_sqlite_database_without_the_setting_gets_its_own_key_file_readable_by_its_owner_only(tmp_path):
    url = f"sqlite:///{tmp_path / 'data' / 'tenure.sqlite3'}"
    first = secrets_at_rest.keys_for(Settings(database_url=url))
    key_file = tmp_path / "data" / "tenure.sqlite3.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    again = secrets_at_rest.keys_for(Settings(database_url=url))
    token = secrets_at_rest.SecretBox(first).seal("whsec_abc")
    assert secrets_at_rest.SecretBox(again).open(token) == "whsec_abc"
    assert [p.name for p in key_file.parent.iterdir()] == ["tenure.sqlite3.key"]
