"""The seed's rules: resellers buy, renew and transfer for clients; clients have no access; release."""

from __future__ import annotations

from tests.api import builders
from tests.integration.flows import balance, buy, charges_for, renew, wait_done


def reseller_with_client(api):
    owner = builders.person(api, "Remy")
    reseller = builders.organization(api, owner, reseller=True)
    builders.fund(api, owner, reseller, 100_000)
    client_id = builders.client_of(api, owner, reseller, "Martin")
    return owner, reseller, client_id


def done(api, who, answer) -> dict:
    assert answer.status_code == 202, answer.text
    op = wait_done(api, who, answer.json()["id"])
    assert op["status"] == "succeeded", op
    return op


def test_reseller_buys_for_a_client_and_pays_for_it(api, workers):
    workers()
    owner, reseller, client_id = reseller_with_client(api)

    op = done(api, owner, buy(api, owner, reseller, "martin.fr", client_id=client_id))

    product = api.get(f"/v1/products/{op['result']['product_id']}", headers=owner.auth).json()
    assert (product["client_id"], product["reseller_id"], product["organization_id"]) == (client_id, reseller, reseller)
    assert charges_for(reseller) == [1500]
    listed = api.get(f"/v1/organizations/{reseller}/products?client={client_id}", headers=owner.auth).json()
    assert [p["id"] for p in listed["items"]] == [product["id"]]
    portfolio = api.get(f"/v1/resellers/{reseller}/clients", headers=owner.auth).json()["items"]
    assert [(c["id"], c["product_count"]) for c in portfolio] == [(client_id, 1)]


def test_a_client_cannot_buy_or_renew(api, workers):
    """Clients have no account; a person signing up with the client's e-mail sees nothing of it."""
    workers()
    owner, reseller, client_id = reseller_with_client(api)
    product_id = done(api, owner, buy(api, owner, reseller, "martin.fr", client_id=client_id))["result"]["product_id"]
    product = api.get(f"/v1/products/{product_id}", headers=owner.auth).json()
    client_person = builders.person(api, "Martin")

    assert buy(api, client_person, reseller, "other.fr", client_id=client_id).status_code == 404
    assert renew(api, client_person, product).status_code == 404
    assert api.get(f"/v1/products/{product_id}", headers=client_person.auth).status_code == 404
    assert charges_for(reseller) == [1500]


def test_the_reseller_renews_for_its_client(api, workers):
    workers()
    owner, reseller, client_id = reseller_with_client(api)
    product_id = done(api, owner, buy(api, owner, reseller, "martin.fr", client_id=client_id))["result"]["product_id"]
    product = api.get(f"/v1/products/{product_id}", headers=owner.auth).json()

    done(api, owner, renew(api, owner, product))

    assert charges_for(reseller) == [1500, 1500]
    assert balance(api, owner, reseller) == 100_000 - 3000


def test_only_a_reseller_names_a_client(api):
    owner = builders.person(api)
    org = builders.organization(api, owner)

    answer = buy(api, owner, org, "x.fr", client_id="cli_whatever")

    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "client_not_allowed"


def test_transfer_moves_a_product_to_a_client_and_back(api, workers):
    workers()
    owner, reseller, client_id = reseller_with_client(api)
    product_id = done(api, owner, buy(api, owner, reseller, "own.fr"))["result"]["product_id"]

    done(
        api, owner, api.post(f"/v1/products/{product_id}/transfers", json={"to_client": client_id}, headers=owner.auth)
    )
    moved = api.get(f"/v1/products/{product_id}", headers=owner.auth).json()
    done(api, owner, api.post(f"/v1/products/{product_id}/transfers", json={"to_client": None}, headers=owner.auth))
    back = api.get(f"/v1/products/{product_id}", headers=owner.auth).json()

    assert (moved["client_id"], moved["reseller_id"]) == (client_id, reseller)
    assert (back["client_id"], back["reseller_id"]) == (None, None)


def test_release_moves_every_product_and_the_client_leaves_the_portfolio(api, workers):
    workers()
    owner, reseller, client_id = reseller_with_client(api)
    other_client = builders.client_of(api, owner, reseller, "Dupont")
    mine = [
        done(api, owner, buy(api, owner, reseller, name, client_id=client_id))["result"]["product_id"]
        for name in ("martin.fr", "martin.com")
    ]
    kept = done(api, owner, buy(api, owner, reseller, "dupont.fr", client_id=other_client))["result"]["product_id"]

    op = done(
        api,
        owner,
        api.post(
            f"/v1/resellers/{reseller}/clients/{client_id}/release",
            json={"owner_email": "pierre@martin.test"},
            headers=owner.auth,
        ),
    )

    new_org = op["result"]["organization_id"]
    assert sorted(op["result"]["product_ids"]) == sorted(mine)
    portfolio = api.get(f"/v1/resellers/{reseller}/clients", headers=owner.auth).json()["items"]
    assert [c["id"] for c in portfolio] == [other_client]
    released = api.get(f"/v1/resellers/{reseller}/clients/{client_id}", headers=owner.auth).json()
    assert (released["status"], released["released_to"]) == ("released", new_org)
    remaining = api.get(f"/v1/organizations/{reseller}/products", headers=owner.auth).json()["items"]
    assert [p["id"] for p in remaining] == [kept]
    for product_id in mine:
        assert api.get(f"/v1/products/{product_id}", headers=owner.auth).status_code == 404

    claimed = api.post("/v1/accounts/claim", json={"claim_token": op["result"]["claim_token"]})
    assert claimed.status_code == 201, claimed.text
    assert claimed.json()["organization_id"] == new_org
    pierre = builders.Person(id=claimed.json()["account_id"], email="pierre@martin.test", key=claimed.json()["api_key"])
    assert api.get("/v1/me", headers=pierre.auth).json()["email"] == "pierre@martin.test"
    theirs = api.get(f"/v1/organizations/{new_org}/products", headers=pierre.auth).json()["items"]
    assert sorted(p["id"] for p in theirs) == sorted(mine)
    assert all(p["client_id"] is None and p["reseller_id"] is None for p in theirs)
    assert api.post("/v1/accounts/claim", json={"claim_token": op["result"]["claim_token"]}).status_code == 422

    again = api.post(
        f"/v1/resellers/{reseller}/clients/{client_id}/release",
        json={"owner_email": "pierre@martin.test"},
        headers=owner.auth,
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "client_not_active"
