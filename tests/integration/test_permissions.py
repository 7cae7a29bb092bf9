"""Permissions at the door and again at execution."""

from __future__ import annotations

from tests.api import builders
from tests.integration.flows import buy, charges_for, product_count, wait_done


def test_a_member_without_product_buy_is_refused(api):
    owner = builders.person(api)
    org = builders.organization(api, owner)
    viewer = builders.member(api, owner, org, ["product:view", "pay:prepaid"])

    answer = buy(api, viewer, org, "nope.fr")

    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "permission_denied"


def test_a_member_without_the_payment_method_is_refused(api):
    owner = builders.person(api)
    org = builders.organization(api, owner)
    buyer = builders.member(api, owner, org, ["product:buy", "pay:prepaid"])

    answer = buy(api, buyer, org, "nope.fr", payment_method="invoice")

    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "payment_method_not_allowed"


def test_a_member_removed_before_execution_loses_the_right(api, workers):
    owner, org = builders.funded(api, 10_000)
    buyer = builders.member(api, owner, org, ["product:buy", "pay:prepaid"])
    op_id = buy(api, buyer, org, "late.fr").json()["id"]  # accepted; no worker runs yet
    team = next(
        t
        for t in api.get(f"/v1/organizations/{org}/teams", headers=owner.auth).json()
        if any(m["id"] == buyer.id for m in t["members"])
    )
    assert (
        api.delete(f"/v1/organizations/{org}/teams/{team['id']}/members/{buyer.id}", headers=owner.auth).status_code
        == 204
    )

    workers()
    op = wait_done(api, owner, op_id)

    assert op["status"] == "failed"
    assert op["error"]["code"] == "permission_denied"
    assert product_count(org) == 0
    assert charges_for(org) == []


def test_leaving_as_the_last_owner_is_refused(api):
    owner = builders.person(api)
    org = builders.organization(api, owner)

    answer = api.post(f"/v1/organizations/{org}/leave", headers=owner.auth)

    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "last_owner"
    assert api.get(f"/v1/organizations/{org}", headers=owner.auth).status_code == 200
