"""Claims with an Idempotency-Key: a reissue or a claim sent twice happens once, and the token or
API key it shows is stored encrypted (read back with raw SQL: nowhere in clear)."""

from __future__ import annotations

from cryptography.fernet import Fernet

from tests import databases
from tests.integration.test_releases import claim, members_of, released, reseller_with_client
from tests.integration.test_secrets_at_rest import keys, raw_bytes, raw_rows, tenure_migrate  # noqa: F401


def nowhere_in_clear(database_url: str, *shown: str) -> list[str]:
    """The secrets among `shown` that a raw read of the database finds."""
    rows, disk = "\n".join(raw_rows(database_url)), raw_bytes(database_url)
    found = []
    for secret in shown:
        body = secret.split("_", 1)[-1]
        if body in rows or body.encode() in disk:
            found.append(secret)
    return found


def reissue(api, owner, reseller: str, client_id: str, key: str | None = "reissue-1"):
    headers = {**owner.auth, **({"Idempotency-Key": key} if key else {})}
    return api.post(f"/v1/resellers/{reseller}/clients/{client_id}/claim", headers=headers)


def test_a_claim_reissued_twice_with_one_key_issues_one_token_shown_again_to_the_reseller(api, workers, database_url):
    workers()
    owner, reseller, client_id, client_email = reseller_with_client(api)
    released(api, owner, reseller, client_id, client_email)

    first = reissue(api, owner, reseller, client_id)
    second = reissue(api, owner, reseller, client_id)

    assert first.status_code == 201, first.text
    assert (second.status_code, second.json()) == (201, first.json())
    assert second.headers["idempotent-replayed"] == "true"
    assert nowhere_in_clear(database_url, first.json()["claim_token"]) == []
    assert claim(api, first.json()["claim_token"]).status_code == 201  # the replay voided nothing


def test_an_account_claim_sent_twice_with_one_key_makes_one_account_and_shows_its_key_again(api, workers, database_url):
    workers()
    owner, reseller, client_id, client_email = reseller_with_client(api)
    op = released(api, owner, reseller, client_id, client_email)
    token, org = op["result"]["claim_token"], op["result"]["organization_id"]

    first = api.post("/v1/accounts/claim", json={"claim_token": token}, headers={"Idempotency-Key": "claim-1"})
    second = api.post("/v1/accounts/claim", json={"claim_token": token}, headers={"Idempotency-Key": "claim-1"})

    assert first.status_code == 201, first.text
    assert (second.status_code, second.json()) == (201, first.json())
    assert members_of(org) == 1
    assert api.get("/v1/me", headers={"Authorization": f"Bearer {first.json()['api_key']}"}).status_code == 200
    assert nowhere_in_clear(database_url, token, first.json()["api_key"]) == []
    other = api.post(
        "/v1/accounts/claim", json={"claim_token": token, "name": "Other"}, headers={"Idempotency-Key": "claim-1"}
    )
    assert (other.status_code, other.json()["error"]["code"]) == (422, "idempotency_key_reused")


def test_stored_answers_stay_readable_across_a_secret_key_rotation(api, workers, database_url, keys):  # noqa: F811
    workers()
    owner, reseller, client_id, client_email = reseller_with_client(api)
    released(api, owner, reseller, client_id, client_email)
    first = reissue(api, owner, reseller, client_id)
    old, new = databases.secret_key(), Fernet.generate_key().decode()

    keys(f"{new},{old}")
    tenure_migrate(database_url, f"{new},{old}")  # re-encrypts the stored answers too
    keys(new)  # the old key is gone
    again = reissue(api, owner, reseller, client_id)

    assert (again.status_code, again.json()) == (201, first.json())
