"""A release hands the client's organization only to whoever presents its one-time claim token."""

from __future__ import annotations

from datetime import timedelta

from runtime.clock import clock
from tables.events import Event
from tables.teams import Membership
from tests.api import builders
from tests.integration.flows import buy, db, wait_done


def reseller_with_client(api):
    owner = builders.person(api, "Remy")
    answer = api.post("/v1/organizations", json={"name": "Remy SA", "reseller": True}, headers=owner.auth)
    assert answer.status_code == 201, answer.text
    reseller = answer.json()["id"]
    funds = api.post(
        f"/v1/organizations/{reseller}/funds",
        json={"amount": {"amount": 100_000, "currency": "EUR"}},
        headers=owner.auth,
    )
    assert funds.status_code == 201, funds.text
    client_email = f"martin{reseller[-6:].lower()}@client.test"
    made = api.post(
        f"/v1/resellers/{reseller}/clients", json={"name": "Martin", "email": client_email}, headers=owner.auth
    )
    assert made.status_code == 201, made.text
    return owner, reseller, made.json()["id"], client_email


def released(api, owner, reseller, client_id, owner_email) -> dict:
    """Releases the client and answers the succeeded operation, as its first reader sees it."""
    answer = api.post(
        f"/v1/resellers/{reseller}/clients/{client_id}/release", json={"owner_email": owner_email}, headers=owner.auth
    )
    assert answer.status_code == 202, answer.text
    op = wait_done(api, owner, answer.json()["id"])
    assert op["status"] == "succeeded", op
    return op


def claim(api, token: str, who=None, **fields):
    return api.post("/v1/accounts/claim", json={"claim_token": token, **fields}, headers=who.auth if who else {})


def members_of(org: str) -> int:
    return db(Membership.count().where(Membership.organization == org).run())


def test_signing_up_with_the_clients_email_first_gives_the_organization_to_nobody(api, workers):
    workers()
    owner, reseller, client_id, client_email = reseller_with_client(api)
    product_id = wait_done(api, owner, buy(api, owner, reseller, "martin.fr", client_id=client_id).json()["id"])[
        "result"
    ]["product_id"]
    attacker = api.post("/v1/accounts", json={"email": client_email, "name": "Not Martin"}).json()
    attacker_auth = {"Authorization": f"Bearer {attacker['api_key']}"}

    op = released(api, owner, reseller, client_id, client_email)

    new_org = op["result"]["organization_id"]
    assert op["result"]["claim_token"].startswith("clm_")
    assert "account_id" not in op["result"]
    assert members_of(new_org) == 0  # held by the claim alone
    assert new_org not in [o["id"] for o in api.get("/v1/me", headers=attacker_auth).json()["organizations"]]
    assert api.get(f"/v1/organizations/{new_org}", headers=attacker_auth).status_code == 404
    assert api.get(f"/v1/products/{product_id}", headers=attacker_auth).status_code == 404
    # Without the token the attacker cannot sign up the address again either.
    builders.refused(claim(api, op["result"]["claim_token"]), 409, "email_taken")

    real_client = builders.person(api, "Martin")  # any e-mail: the token is what counts
    claimed = claim(api, op["result"]["claim_token"], real_client)

    assert claimed.status_code == 201, claimed.text
    assert claimed.json() == {"account_id": real_client.id, "organization_id": new_org, "api_key": None}
    assert api.get(f"/v1/products/{product_id}", headers=real_client.auth).json()["organization_id"] == new_org
    teams = builders.teams_of(api, real_client, new_org)
    assert [m["id"] for t in teams if t["owner"] for m in t["members"]] == [real_client.id]
    assert api.get(f"/v1/organizations/{new_org}", headers=attacker_auth).status_code == 404


def test_the_claim_token_is_shown_once_and_only_to_a_client_manager(api, workers):
    workers()
    owner, reseller, client_id, client_email = reseller_with_client(api)
    viewer = builders.member(api, owner, reseller, ["org:view", "product:view"], "Val")
    nobody = builders.member(api, owner, reseller, [], "Nina")
    manager = builders.member(api, owner, reseller, ["client:manage"], "Max")
    answer = api.post(
        f"/v1/resellers/{reseller}/clients/{client_id}/release",
        json={"owner_email": client_email},
        headers=manager.auth,
    )
    op_id = answer.json()["id"]
    first = wait_done(api, owner, op_id)  # the owner polls until done: its last read shows the token

    for outsider in (viewer, nobody):
        builders.refused(api.get(f"/v1/operations/{op_id}", headers=outsider.auth), 404, "not_found")
    token = first["result"]["claim_token"]
    assert token.startswith("clm_")
    again = api.get(f"/v1/operations/{op_id}", headers=manager.auth).json()
    assert "claim_token" not in again["result"]
    assert again["result"]["claim"]["status"] == "pending"
    assert claim(api, token).status_code == 201


def test_an_operation_is_read_with_the_permission_its_kind_needs(api, workers):
    workers()
    owner, reseller, client_id, _ = reseller_with_client(api)
    op_id = buy(api, owner, reseller, "lire.fr").json()["id"]
    wait_done(api, owner, op_id)
    clients_only = builders.member(api, owner, reseller, ["client:manage"], "Cleo")
    products_only = builders.member(api, owner, reseller, ["product:view"], "Paul")

    builders.refused(api.get(f"/v1/operations/{op_id}", headers=clients_only.auth), 404, "not_found")
    assert api.get(f"/v1/operations/{op_id}", headers=products_only.auth).json()["status"] == "succeeded"


def test_a_claim_without_a_key_creates_the_owner_account_with_the_release_email(api, workers):
    workers()
    owner, reseller, client_id, client_email = reseller_with_client(api)

    op = released(api, owner, reseller, client_id, client_email)
    made = claim(api, op["result"]["claim_token"]).json()

    mine = {"Authorization": f"Bearer {made['api_key']}"}
    assert api.get(f"/v1/organizations/{made['organization_id']}", headers=mine).json()["name"] == "Martin"
    assert api.get("/v1/me", headers=mine).json()["email"] == client_email


def test_a_claim_without_a_key_can_name_another_email_and_name(api, workers):
    workers()
    owner, reseller, client_id, client_email = reseller_with_client(api)
    op = released(api, owner, reseller, client_id, client_email)

    made = claim(api, op["result"]["claim_token"], email="boss@martin.test", name="Boss")

    assert made.status_code == 201, made.text
    me = api.get("/v1/me", headers={"Authorization": f"Bearer {made.json()['api_key']}"}).json()
    assert (me["email"], me["name"]) == ("boss@martin.test", "Boss")
    assert [o["id"] for o in me["organizations"]] == [op["result"]["organization_id"]]


def test_a_claim_with_a_key_takes_no_account_fields(api, workers):
    workers()
    owner, reseller, client_id, client_email = reseller_with_client(api)
    op = released(api, owner, reseller, client_id, client_email)
    someone = builders.person(api, "Sam")

    builders.refused(claim(api, op["result"]["claim_token"], someone, email="x@y.test"), 422, "unexpected_fields")
    builders.refused(
        claim(api, op["result"]["claim_token"], builders.Person(id="", email="", key="tnr_wrong")), 401, "unauthorized"
    )
    assert claim(api, op["result"]["claim_token"], someone).status_code == 201


def test_an_expired_token_is_refused_and_the_reseller_reissues_one(api, workers):
    workers()
    owner, reseller, client_id, client_email = reseller_with_client(api)
    op = released(api, owner, reseller, client_id, client_email)
    token = op["result"]["claim_token"]

    clock.advance(timedelta(days=30, seconds=1))
    builders.refused(claim(api, token), 422, "invalid_claim_token")
    record = api.get(f"/v1/resellers/{reseller}/clients/{client_id}", headers=owner.auth).json()
    assert record["claim"]["status"] == "expired"

    reissued = api.post(f"/v1/resellers/{reseller}/clients/{client_id}/claim", headers=owner.auth)
    assert reissued.status_code == 201, reissued.text
    fresh = reissued.json()["claim_token"]
    record = api.get(f"/v1/resellers/{reseller}/clients/{client_id}", headers=owner.auth).json()
    assert record["claim"]["status"] == "pending"
    assert record["claim"]["expires_at"] == reissued.json()["expires_at"]
    made = claim(api, fresh)
    assert made.status_code == 201, made.text
    record = api.get(f"/v1/resellers/{reseller}/clients/{client_id}", headers=owner.auth).json()
    assert record["claim"]["status"] == "claimed" and record["claim"]["claimed_at"]
    builders.refused(
        api.post(f"/v1/resellers/{reseller}/clients/{client_id}/claim", headers=owner.auth), 409, "already_claimed"
    )


def test_reissuing_voids_the_previous_token(api, workers):
    workers()
    owner, reseller, client_id, client_email = reseller_with_client(api)
    op = released(api, owner, reseller, client_id, client_email)

    fresh = api.post(f"/v1/resellers/{reseller}/clients/{client_id}/claim", headers=owner.auth).json()

    builders.refused(claim(api, op["result"]["claim_token"]), 422, "invalid_claim_token")
    assert claim(api, fresh["claim_token"]).status_code == 201


def test_a_claim_is_issued_only_for_a_released_client_of_ones_own(api, workers):
    workers()
    owner, reseller, client_id, _ = reseller_with_client(api)
    other_owner, other_reseller, other_client, _ = reseller_with_client(api)

    builders.refused(
        api.post(f"/v1/resellers/{reseller}/clients/{client_id}/claim", headers=owner.auth), 409, "client_not_released"
    )
    builders.refused(
        api.post(f"/v1/resellers/{reseller}/clients/{other_client}/claim", headers=owner.auth), 404, "not_found"
    )
    builders.refused(
        api.post(f"/v1/resellers/{other_reseller}/clients/{other_client}/claim", headers=owner.auth), 404, "not_found"
    )
    viewer = builders.member(api, owner, reseller, ["org:view"], "Vic")
    builders.refused(
        api.post(f"/v1/resellers/{reseller}/clients/{client_id}/claim", headers=viewer.auth), 403, "permission_denied"
    )


def test_the_reseller_hears_of_the_release_and_of_the_claim_without_the_token(api, workers):
    workers()
    owner, reseller, client_id, client_email = reseller_with_client(api)
    op = released(api, owner, reseller, client_id, client_email)
    token = op["result"]["claim_token"]
    made = claim(api, token).json()

    rows = db(
        Event.select(Event.type, Event.data)
        .where(Event.organization_id == reseller)
        .order_by(Event.id)
        .output(load_json=True)
        .run()
    )
    by_type = {r["type"]: r["data"] for r in rows}
    assert by_type["client.released"]["claim"]["status"] == "pending"
    assert by_type["organization.claimed"]["organization_id"] == made["organization_id"]
    assert by_type["organization.claimed"]["client_id"] == client_id
    assert all(token not in str(r["data"]) for r in rows)
