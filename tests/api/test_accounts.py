"""Personal accounts: sign-up, API keys, who am I, claim tokens."""

from __future__ import annotations

import pytest

from tests.api import builders as b
from tests.api.builders import refused


def test_sign_up_returns_the_account_and_a_key_that_works(client):
    answer = client.post("/v1/accounts", json={"email": "grace@example.test", "name": "Grace"})

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert isinstance(body["id"], str) and body["id"]
    assert body["email"] == "grace@example.test"
    assert body["api_key"].startswith("tnr_") and len(body["api_key"]) > 20

    me = client.get("/v1/me", headers={"Authorization": f"Bearer {body['api_key']}"})
    assert me.status_code == 200, me.text
    assert me.json()["id"] == body["id"]
    assert me.json()["email"] == "grace@example.test"
    assert me.json()["name"] == "Grace"
    assert me.json()["organizations"] == []


def test_each_sign_up_gets_its_own_key(client):
    first, second = b.person(client, "Ann"), b.person(client, "Ben")

    assert first.key != second.key
    assert client.get("/v1/me", headers=first.auth).json()["id"] == first.id
    assert client.get("/v1/me", headers=second.auth).json()["id"] == second.id


@pytest.mark.parametrize("again", ["grace@example.test", "GRACE@Example.TEST"], ids=["same", "other-case"])
def test_an_email_already_used_is_refused(client, again):
    first = client.post("/v1/accounts", json={"email": "grace@example.test", "name": "Grace"})
    assert first.status_code == 201, first.text

    message = refused(client.post("/v1/accounts", json={"email": again, "name": "Impostor"}), 409, "email_taken")

    assert again in message
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {first.json()['api_key']}"})
    assert me.json()["name"] == "Grace"


@pytest.mark.parametrize(
    "body, named",
    [
        ({"email": "x@example.test"}, "name"),
        ({"name": "X"}, "email"),
        ({"email": "not-an-email", "name": "X"}, "email"),
        ({"email": "x@example.test", "name": ""}, "name"),
        ({"email": "x@example.test", "name": "   "}, "name"),
        ({"email": "x@example.test", "name": 42}, "name"),
        ({"email": "x@example.test", "name": "X", "role": "admin"}, "role"),
    ],
    ids=["missing-name", "missing-email", "bad-email", "empty-name", "blank-name", "name-not-text", "extra-field"],
)
def test_a_malformed_sign_up_is_refused_naming_the_field(client, body, named):
    message = refused(client.post("/v1/accounts", json=body), 400, "invalid_request")

    assert named in message
    # Nothing was written: the address is still free.
    assert client.post("/v1/accounts", json={"email": "x@example.test", "name": "X"}).status_code == 201


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"", b"[]", b'"x@example.test"', b"null"],
    ids=["broken", "empty", "array", "string", "null"],
)
def test_a_sign_up_that_is_not_a_json_object_is_refused(client, content):
    answer = client.post("/v1/accounts", content=content, headers={"Content-Type": "application/json"})

    refused(answer, 400, "invalid_request")


def test_me_lists_every_organization_and_team_of_the_person(client):
    ada = b.person(client, "Ada")
    bob = b.person(client, "Bob")
    ada_org = b.organization(client, ada, name="Ada Ltd")
    bob_org = b.organization(client, bob, name="Bob Resale", reseller=True)
    sales = b.team(client, bob, bob_org, ["org:view", "product:buy"], name="Sales")
    support = b.team(client, bob, bob_org, ["product:view"], name="Support")
    b.add_to_team(client, bob, bob_org, sales, ada)
    b.add_to_team(client, bob, bob_org, support, ada)

    me = client.get("/v1/me", headers=ada.auth)

    assert me.status_code == 200, me.text
    orgs = {o["id"]: o for o in me.json()["organizations"]}
    assert set(orgs) == {ada_org, bob_org}
    assert orgs[ada_org]["name"] == "Ada Ltd" and orgs[ada_org]["reseller"] is False
    assert [(t["name"], t["owner"]) for t in orgs[ada_org]["teams"]] == [("Owners", True)]
    assert sorted(orgs[ada_org]["teams"][0]["permissions"]) == sorted(b.PERMISSIONS)
    assert orgs[bob_org]["reseller"] is True
    teams = {t["id"]: t for t in orgs[bob_org]["teams"]}
    assert set(teams) == {sales, support}
    assert teams[sales]["name"] == "Sales" and teams[sales]["owner"] is False
    assert sorted(teams[sales]["permissions"]) == ["org:view", "product:buy"]
    assert teams[support]["permissions"] == ["product:view"]
    # Bob sees only his own organization, and only his Owner team in it.
    bob_me = client.get("/v1/me", headers=bob.auth).json()
    assert [o["id"] for o in bob_me["organizations"]] == [bob_org]
    assert [t["name"] for t in bob_me["organizations"][0]["teams"]] == ["Owners"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer    "},
        {"Authorization": "Bearer tnr_not-a-real-key"},
        {"Authorization": "Bearer \x00\x01garbage"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Token tnr_whatever"},
    ],
    ids=["missing", "empty", "scheme-only", "blank-key", "unknown-key", "garbage", "basic", "other-scheme"],
)
def test_a_missing_or_bad_key_is_refused(client, headers):
    b.person(client)  # some account exists, so nothing is refused for lack of accounts

    refused(client.get("/v1/me", headers=headers), 401, "unauthorized")


def test_a_real_key_sent_with_another_scheme_is_refused(client):
    ada = b.person(client)

    refused(client.get("/v1/me", headers={"Authorization": f"Basic {ada.key}"}), 401, "unauthorized")
    refused(client.get("/v1/me", headers={"Authorization": ada.key}), 401, "unauthorized")


def test_a_key_with_one_character_changed_is_refused(client):
    ada = b.person(client)
    tampered = ada.key[:-1] + ("A" if ada.key[-1] != "A" else "B")

    refused(client.get("/v1/me", headers={"Authorization": f"Bearer {tampered}"}), 401, "unauthorized")


@pytest.mark.parametrize("token", ["clm_unknown", "tnr_looks_like_a_key", "x" * 200])
def test_an_unknown_claim_token_is_refused(client, token):
    refused(client.post("/v1/accounts/claim", json={"claim_token": token}), 422, "invalid_claim_token")


def test_a_claim_without_a_token_is_refused(client):
    message = refused(client.post("/v1/accounts/claim", json={}), 400, "invalid_request")

    assert "claim_token" in message


def test_an_api_key_is_not_an_account_claim_token(client):
    ada = b.person(client)

    refused(client.post("/v1/accounts/claim", json={"claim_token": ada.key}), 422, "invalid_claim_token")
    assert client.get("/v1/me", headers=ada.auth).status_code == 200


def test_api_keys_are_not_stored_in_clear(client):
    from tables.accounts import Account

    ada = b.person(client)

    rows = Account.select().where(Account.id == ada.id).run_sync()

    assert len(rows) == 1
    stored = " ".join(str(value) for value in rows[0].values())
    secret = ada.key.removeprefix("tnr_")
    assert ada.key not in stored
    assert secret not in stored
    assert secret[:16] not in stored
