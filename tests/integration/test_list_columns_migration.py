"""Lists stored as space-separated text before the upgrade (a team's permissions, an API key's
organizations and permissions, an endpoint's event types) read as the same lists after
`tenure migrate`, on each backend."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tables import api_keys, deliveries, engine, organizations, teams
from tables.accounts import digest
from tests import databases
from tests.conftest import BACKENDS
from tests.integration.old_databases import database_before

# The last migration before the lists became arrays.
BEFORE_ARRAYS = "2026-12-03T09:22:49:469245"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
NARROW_KEY = "tnr_narrowkey_0123456789abcdef"
WIDE_KEY = "tnr_widekey_0123456789abcdef"

OLD_ROWS = [
    ("INSERT INTO organizations (id, name, created_at) VALUES ({}, {}, {})", "org_a", "Reseller", NOW),
    ("INSERT INTO accounts (id, email, name, created_at) VALUES ({}, {}, {}, {})", "acc_a", "a@x.test", "A", NOW),
    (
        "INSERT INTO teams (id, organization, name, name_key, permissions, is_owner, created_at) "
        "VALUES ({}, {}, {}, {}, {}, {}, {})",
        *("team_support", "org_a", "Support", "org_a:support", "product:view product:renew", False, NOW),
    ),
    (
        "INSERT INTO teams (id, organization, name, name_key, permissions, is_owner, created_at) "
        "VALUES ({}, {}, {}, {}, {}, {}, {})",
        *("team_none", "org_a", "Nobody", "org_a:nobody", "", False, NOW),
    ),
    (
        "INSERT INTO api_keys (id, account, name, key_hash, prefix, organizations, permissions, created_at) "
        "VALUES ({}, {}, {}, {}, {}, {}, {}, {})",
        *("key_narrow", "acc_a", "robot", digest(NARROW_KEY), "tnr_narrowke", "org_a org_b", "billing:view", NOW),
    ),
    (
        "INSERT INTO api_keys (id, account, name, key_hash, prefix, organizations, permissions, created_at) "
        "VALUES ({}, {}, {}, {}, {}, {}, {}, {})",
        *("key_wide", "acc_a", "default", digest(WIDE_KEY), "tnr_widekey", None, None, NOW),
    ),
    (
        "INSERT INTO webhook_endpoints (id, organization_id, url, event_types, secret, created_at) "
        "VALUES ({}, {}, {}, {}, {}, {})",
        *("whe_some", "org_a", "https://hooks.example/a", "product.purchased product.expiring", "", NOW),
    ),
    (
        "INSERT INTO webhook_endpoints (id, organization_id, url, event_types, secret, created_at) "
        "VALUES ({}, {}, {}, {}, {}, {})",
        *("whe_all", "org_a", "https://hooks.example/b", "", "", NOW),
    ),
]


@pytest.fixture(params=BACKENDS)
def old_database_url(request, tmp_path: Path):
    """An empty database of its own, migrated up to the last migration before the arrays."""
    with database_before(request.param, BEFORE_ARRAYS, tmp_path, "lists") as url:
        yield url


async def insert_the_old_way() -> None:
    for sql, *values in OLD_ROWS:
        await organizations.Organization.raw(sql, *values).run()


def test_lists_stored_as_text_before_the_upgrade_read_as_the_same_lists_after_it(old_database_url):
    engine.bind(engine.for_url(old_database_url))
    databases.configure_secrets(old_database_url)
    asyncio.run(insert_the_old_way())

    databases.run_migrate(old_database_url)

    permissions = {t.id: t.permissions for t in asyncio.run(teams.teams_with_members("org_a"))}
    assert permissions == {"team_support": ["product:renew", "product:view"], "team_none": []}
    granted = asyncio.run(teams.get_team("org_a", "team_support"))
    assert granted is not None and granted.permissions == ["product:renew", "product:view"]

    narrow = asyncio.run(api_keys.lookup(NARROW_KEY))
    assert narrow is not None
    assert narrow[0].key_orgs == frozenset({"org_a", "org_b"})
    assert narrow[0].key_permissions == frozenset({"billing:view"})
    wide = asyncio.run(api_keys.lookup(WIDE_KEY))
    assert wide is not None
    assert (wide[0].key_orgs, wide[0].key_permissions) == (None, None)  # null still means: no narrowing
    listed = {k.name: (k.organizations, k.permissions) for k in asyncio.run(api_keys.of("acc_a"))}
    assert listed == {"robot": (["org_a", "org_b"], ["billing:view"]), "default": (None, None)}

    hooks = {h["id"]: h["event_types"] for h in asyncio.run(deliveries.enabled_endpoints(["org_a"]))}
    assert hooks == {"whe_some": ["product.expiring", "product.purchased"], "whe_all": []}

    # ...and a list written after the upgrade reads back as written.
    made = asyncio.run(teams.create_team("org_a", "Billing", frozenset({"billing:view"}), NOW))
    again = asyncio.run(teams.get_team("org_a", made.id))
    assert again is not None and again.permissions == ["billing:view"]
