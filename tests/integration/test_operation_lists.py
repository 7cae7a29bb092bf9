"""Operations and products listed after real work: kinds by permission, no claim token in any list."""

from __future__ import annotations

import time
from urllib.parse import quote

from tests.api import builders
from tests.integration.flows import buy, wait_done
from tests.integration.test_releases import reseller_with_client


def listed_operations(api, who, org: str, query: str = "") -> list[dict]:
    answer = api.get(f"/v1/organizations/{org}/operations{query}", headers=who.auth)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def wait_listed(api, who, org: str, query: str, timeout: float = 30.0) -> dict:
    """The first operation a filtered list shows as finished, polled through the list only."""
    deadline = time.monotonic() + timeout
    while True:
        items = listed_operations(api, who, org, query)
        if items and items[0]["status"] in ("succeeded", "failed"):
            return items[0]
        assert time.monotonic() < deadline, f"nothing finished in {query}: {items}"
        time.sleep(0.05)


def test_a_release_is_listed_without_its_claim_token_which_is_still_shown_once(api, workers):
    workers()
    owner, reseller, client_id, client_email = reseller_with_client(api)
    wait_done(api, owner, buy(api, owner, reseller, "café-lists.fr", client_id=client_id).json()["id"])
    answer = api.post(
        f"/v1/resellers/{reseller}/clients/{client_id}/release", json={"owner_email": client_email}, headers=owner.auth
    )
    assert answer.status_code == 202, answer.text

    release = wait_listed(api, owner, reseller, "?kind=release")
    everything = api.get(f"/v1/organizations/{reseller}/operations", headers=owner.auth)
    exported = api.get(f"/v1/organizations/{reseller}/operations", headers={**owner.auth, "Accept": "text/csv"})

    assert release["id"] == answer.json()["id"] and release["status"] == "succeeded", release
    assert "claim_token" not in release["result"]
    assert [op["kind"] for op in everything.json()["items"]] == ["release", "purchase", "topup"]
    assert "clm_" not in everything.text and "clm_" not in exported.text
    shown = api.get(f"/v1/operations/{release['id']}", headers=owner.auth).json()
    assert shown["result"]["claim_token"].startswith("clm_")  # listing did not use up the one showing
    assert "clm_" not in api.get(f"/v1/organizations/{reseller}/operations", headers=owner.auth).text


def test_members_list_only_the_operation_kinds_they_may_read(api, workers):
    workers()
    owner, reseller, client_id, client_email = reseller_with_client(api)
    wait_done(api, owner, buy(api, owner, reseller, "kinds-lists.fr").json()["id"])
    answer = api.post(
        f"/v1/resellers/{reseller}/clients/{client_id}/release", json={"owner_email": client_email}, headers=owner.auth
    )
    wait_listed(api, owner, reseller, "?kind=release")
    viewer = builders.member(api, owner, reseller, ["org:view"], name="Vera")
    product_viewer = builders.member(api, owner, reseller, ["org:view", "product:view"], name="Paul")
    product_only = builders.member(api, owner, reseller, ["product:view"], name="Pia")

    def kinds(who) -> list[str]:
        return [op["kind"] for op in listed_operations(api, who, reseller)]

    assert kinds(owner) == ["release", "purchase", "topup"]
    assert kinds(product_viewer) == ["purchase", "topup"]
    assert kinds(viewer) == ["topup"]
    assert listed_operations(api, viewer, reseller, "?count=true") == listed_operations(api, viewer, reseller)
    counted = api.get(f"/v1/organizations/{reseller}/operations?count=true", headers=viewer.auth).json()
    assert counted["total"] == 1
    builders.refused(
        api.get(f"/v1/organizations/{reseller}/operations", headers=product_only.auth), 403, "permission_denied"
    )
    assert (
        answer.json()["id"]
        not in api.get(
            f"/v1/organizations/{reseller}/operations", headers={**product_viewer.auth, "Accept": "text/csv"}
        ).text
    )


def test_bought_products_are_found_by_their_unicode_name_and_exported(api, workers):
    workers()
    owner, reseller, client_id, _ = reseller_with_client(api)
    for name in ["bücher-lists.de", "plain-lists.de"]:
        op = wait_done(api, owner, buy(api, owner, reseller, name, client_id=client_id).json()["id"])
        assert op["status"] == "succeeded", op

    found = api.get(
        f"/v1/organizations/{reseller}/products?q={quote('Bücher-Lists')}&client={client_id}", headers=owner.auth
    ).json()["items"]
    exported = api.get(
        f"/v1/organizations/{reseller}/products?q=lists&sort=name", headers={**owner.auth, "Accept": "text/csv"}
    )

    assert [p["name"] for p in found] == ["xn--bcher-lists-thb.de"]
    assert exported.text.splitlines()[1:] and [line.split(",")[2] for line in exported.text.splitlines()[1:]] == [
        "plain-lists.de",
        "xn--bcher-lists-thb.de",
    ]
