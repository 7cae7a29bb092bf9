"""A released client is the record of its release: it is neither edited nor deleted."""

from __future__ import annotations

from tests.api import builders
from tests.integration.flows import buy, wait_done
from tests.integration.test_releases import reseller_with_client


def test_a_released_client_is_neither_edited_nor_deleted(api, workers):
    workers()
    owner, reseller, client_id, client_email = reseller_with_client(api)
    wait_done(api, owner, buy(api, owner, reseller, "released-edits.fr", client_id=client_id).json()["id"])
    release = api.post(
        f"/v1/resellers/{reseller}/clients/{client_id}/release", json={"owner_email": client_email}, headers=owner.auth
    )
    assert wait_done(api, owner, release.json()["id"])["status"] == "succeeded"
    before = api.get(f"/v1/resellers/{reseller}/clients/{client_id}", headers=owner.auth).json()

    edited = api.patch(f"/v1/resellers/{reseller}/clients/{client_id}", json={"name": "Renamed"}, headers=owner.auth)
    deleted = api.delete(f"/v1/resellers/{reseller}/clients/{client_id}", headers=owner.auth)

    assert "released" in builders.refused(edited, 409, "client_not_active")
    assert "released" in builders.refused(deleted, 409, "client_not_active")
    after = api.get(f"/v1/resellers/{reseller}/clients/{client_id}", headers=owner.auth).json()
    assert after == before and after["claim"]["status"] == "pending"


def test_a_client_whose_product_was_transferred_away_can_be_deleted(api, workers):
    workers()
    owner, reseller, client_id, _ = reseller_with_client(api)
    product_id = wait_done(api, owner, buy(api, owner, reseller, "moving-edits.fr", client_id=client_id).json()["id"])[
        "result"
    ]["product_id"]
    builders.refused(
        api.delete(f"/v1/resellers/{reseller}/clients/{client_id}", headers=owner.auth), 409, "client_has_products"
    )

    moved = api.post(f"/v1/products/{product_id}/transfers", json={"to_client": None}, headers=owner.auth)
    assert wait_done(api, owner, moved.json()["id"])["status"] == "succeeded"
    answer = api.delete(f"/v1/resellers/{reseller}/clients/{client_id}", headers=owner.auth)

    assert answer.status_code == 204, answer.text
    assert api.get(f"/v1/products/{product_id}", headers=owner.auth).json()["client_id"] is None
