"""Self-service API keys: several named keys per account, limited to some organizations or
narrowed to some permissions (never widened), revoked at once, carried over from before."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import msgspec
import pytest

from rules import permissions
from rules.errors import PermissionDenied
from runtime.clock import clock
from tables import accounts, operations
from tables.accounts import Account
from tables.migrate import migrate
from tests.api import builders as b
from tests.api.builders import refused
from worker.execution import recheck


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_key(client, who: b.Person, name: str = "ci", **scope) -> dict:
    answer = client.post("/v1/me/keys", json={"name": name, **scope}, headers=who.auth)
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_a_new_key_is_shown_once_and_works(client):
    ada = b.person(client)

    made = new_key(client, ada, "deploy bot")

    assert made["api_key"].startswith("tnr_") and made["api_key"] != ada.key
    assert made["name"] == "deploy bot" and made["organizations"] is None and made["permissions"] is None
    me = client.get("/v1/me", headers=bearer(made["api_key"]))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == ada.id


def test_the_list_shows_names_prefixes_and_scope_but_no_key(client):
    ada = b.person(client)
    made = new_key(client, ada, "ci", permissions=["product:view"])

    listed = client.get("/v1/me/keys", headers=ada.auth)

    assert listed.status_code == 200, listed.text
    keys = listed.json()
    assert [k["name"] for k in keys] == ["default", "ci"]
    for entry, key in zip(keys, [ada.key, made["api_key"]], strict=True):
        assert key.startswith(entry["prefix"]) and len(entry["prefix"]) < len(key) // 3
        assert entry["api_key"] is None
        assert key not in listed.text
    assert keys[1]["permissions"] == ["product:view"]
    assert set(keys[0]) >= {"id", "name", "prefix", "created_at", "last_used_at"}


def test_a_revoked_key_is_refused_at_once(client):
    ada = b.person(client)
    made = new_key(client, ada)
    assert client.get("/v1/me", headers=bearer(made["api_key"])).status_code == 200

    answer = client.delete(f"/v1/me/keys/{made['id']}", headers=ada.auth)

    assert answer.status_code == 204, answer.text
    refused(client.get("/v1/me", headers=bearer(made["api_key"])), 401, "unauthorized")
    assert client.get("/v1/me", headers=ada.auth).status_code == 200
    assert [k["name"] for k in client.get("/v1/me/keys", headers=ada.auth).json()] == ["default"]


def test_another_accounts_key_cannot_be_revoked_or_seen(client):
    ada, eve = b.person(client, "Ada"), b.person(client, "Eve")
    made = new_key(client, ada)

    refused(client.delete(f"/v1/me/keys/{made['id']}", headers=eve.auth), 404, "not_found")

    assert client.get("/v1/me", headers=bearer(made["api_key"])).status_code == 200
    assert [k["name"] for k in client.get("/v1/me/keys", headers=eve.auth).json()] == ["default"]


def test_a_key_limited_to_one_organization_finds_no_other(client):
    ada = b.person(client)
    mine, other = b.organization(client, ada, name="Mine"), b.organization(client, ada, name="Other")
    made = new_key(client, ada, organizations=[mine])
    key = bearer(made["api_key"])

    assert client.get(f"/v1/organizations/{mine}", headers=key).status_code == 200
    refused(client.get(f"/v1/organizations/{other}", headers=key), 404, "not_found")
    refused(client.get(f"/v1/organizations/{other}/webhook-endpoints", headers=key), 404, "not_found")
    assert [o["id"] for o in client.get("/v1/me", headers=key).json()["organizations"]] == [mine]
    assert client.get(f"/v1/organizations/{other}", headers=ada.auth).status_code == 200


def test_a_key_cannot_be_limited_to_an_organization_of_someone_else(client):
    ada, eve = b.person(client, "Ada"), b.person(client, "Eve")
    theirs = b.organization(client, eve)

    answer = client.post("/v1/me/keys", json={"name": "sneaky", "organizations": [theirs]}, headers=ada.auth)

    refused(answer, 422, "unknown_organization")


def test_a_narrowed_key_is_denied_what_it_lacks_although_the_teams_grant_it(client):
    ada = b.person(client)
    org = b.organization(client, ada)
    viewer = bearer(new_key(client, ada, permissions=["org:view", "webhook:manage"])["api_key"])

    assert client.get(f"/v1/organizations/{org}", headers=viewer).status_code == 200
    assert client.get(f"/v1/organizations/{org}/webhook-endpoints", headers=viewer).status_code == 200
    refused(client.get(f"/v1/organizations/{org}/billing", headers=viewer), 403, "permission_denied")
    refused(
        client.post(f"/v1/organizations/{org}/teams", json={"name": "x", "permissions": []}, headers=viewer),
        403,
        "permission_denied",
    )
    assert client.get(f"/v1/organizations/{org}/billing", headers=ada.auth).status_code == 200


def test_a_key_never_grants_more_than_the_teams(client):
    ada = b.person(client)
    org = b.organization(client, ada)
    bob = b.member(client, ada, org, ["org:view"])
    # Bob asks for billing:manage, which his team does not grant: it is stored but grants nothing.
    wide = bearer(new_key(client, bob, permissions=["org:view", "billing:manage"])["api_key"])

    assert client.get(f"/v1/organizations/{org}", headers=wide).status_code == 200
    refused(
        client.post(
            f"/v1/organizations/{org}/funds", json={"amount": {"amount": 100, "currency": "EUR"}}, headers=wide
        ),
        403,
        "permission_denied",
    )


def test_an_unknown_permission_is_refused(client):
    ada = b.person(client)

    refused(
        client.post("/v1/me/keys", json={"name": "x", "permissions": ["root"]}, headers=ada.auth),
        422,
        "unknown_permission",
    )


def test_a_narrowed_key_cannot_manage_keys(client):
    ada = b.person(client)
    narrow = bearer(new_key(client, ada, permissions=["org:view"])["api_key"])

    refused(client.post("/v1/me/keys", json={"name": "wider"}, headers=narrow), 403, "permission_denied")
    refused(client.get("/v1/me/keys", headers=narrow), 403, "permission_denied")


def test_last_used_at_is_set_after_use_and_not_rewritten_within_a_minute(client):
    ada = b.person(client)
    made = new_key(client, ada)
    assert made["last_used_at"] is None

    start = clock.now()
    clock.pin(start)
    client.get("/v1/me", headers=bearer(made["api_key"]))
    used = next(k for k in client.get("/v1/me/keys", headers=ada.auth).json() if k["id"] == made["id"])
    assert used["last_used_at"] is not None

    clock.pin(start + timedelta(seconds=30))
    client.get("/v1/me", headers=bearer(made["api_key"]))
    again = next(k for k in client.get("/v1/me/keys", headers=ada.auth).json() if k["id"] == made["id"])
    assert again["last_used_at"] == used["last_used_at"]

    clock.pin(start + timedelta(seconds=61))
    client.get("/v1/me", headers=bearer(made["api_key"]))
    later = next(k for k in client.get("/v1/me/keys", headers=ada.auth).json() if k["id"] == made["id"])
    assert later["last_used_at"] > used["last_used_at"]


def test_an_operation_asked_with_a_narrowed_key_is_narrowed_again_at_execution(client):
    owner, org = b.funded(client, 100_000)
    buyer = bearer(new_key(client, owner, permissions=["product:buy", "pay:prepaid", "product:view"])["api_key"])

    answer = client.post(
        f"/v1/organizations/{org}/purchases",
        headers=buyer,
        json={"kind": "mailbox", "name": "box", "years": 1, "payment_method": "prepaid"},
    )
    assert answer.status_code == 202, answer.text
    op = asyncio.run(operations.get(answer.json()["id"]))

    assert sorted(op.params["key_permissions"]) == ["pay:prepaid", "product:buy", "product:view"]
    asyncio.run(recheck(op, permissions.PRODUCT_BUY, "prepaid"))  # the key has what it needs
    with pytest.raises(PermissionDenied):
        asyncio.run(recheck(op, permissions.PRODUCT_TRANSFER))  # the owner's teams grant it, the key does not
    unnarrowed = msgspec.structs.replace(op, params={k: v for k, v in op.params.items() if k != "key_permissions"})
    asyncio.run(recheck(unnarrowed, permissions.PRODUCT_TRANSFER))


def test_migrate_carries_an_accounts_old_key_over_as_its_default_key(client, database_url):
    old_key = accounts.new_secret()

    async def insert_the_old_way() -> None:
        await Account.insert(
            Account(
                id="acc_old",
                email="old@example.test",
                name="Old",
                created_at=clock.now(),
                key_hash=accounts.digest(old_key),
            )
        )

    asyncio.run(insert_the_old_way())
    refused(client.get("/v1/me", headers=bearer(old_key)), 401, "unauthorized")

    asyncio.run(migrate())

    me = client.get("/v1/me", headers=bearer(old_key))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == "acc_old"
    keys = client.get("/v1/me/keys", headers=bearer(old_key)).json()
    assert [k["name"] for k in keys] == ["default"]

    async def left_in_accounts() -> dict:
        return await Account.select(Account.key_hash).where(Account.id == "acc_old").first()

    left = asyncio.run(left_in_accounts())
    assert left["key_hash"] is None  # carried once: a revoked default key never comes back

    client.delete(f"/v1/me/keys/{keys[0]['id']}", headers=bearer(old_key))
    asyncio.run(migrate())
    refused(client.get("/v1/me", headers=bearer(old_key)), 401, "unauthorized")
