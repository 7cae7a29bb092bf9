"""org:manage does not let a manager give themselves or others more than they hold."""

from __future__ import annotations

from tests.api import builders


def test_a_manager_cannot_create_a_team_with_permissions_they_lack(client):
    owner = builders.person(client)
    org = builders.organization(client, owner)
    manager = builders.member(client, owner, org, ["org:manage", "org:view"])

    answer = client.post(
        f"/v1/organizations/{org}/teams",
        headers=manager.auth,
        json={"name": "Billing", "permissions": ["billing:manage"]},
    )

    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "permission_denied"
    assert "billing:manage" in answer.json()["error"]["message"]
    teams = client.get(f"/v1/organizations/{org}/teams", headers=owner.auth).json()
    assert "Billing" not in [t["name"] for t in teams]


def test_a_manager_cannot_join_the_owner_team_or_remove_an_owner(client):
    owner = builders.person(client)
    org = builders.organization(client, owner)
    co_owner = builders.person(client, "Cora")
    owners = builders.owners_team(client, owner, org)
    assert (
        client.post(
            f"/v1/organizations/{org}/teams/{owners}/members", json={"email": co_owner.email}, headers=owner.auth
        ).status_code
        == 201
    )
    manager = builders.member(client, owner, org, ["org:manage", "org:view"])

    joined = client.post(
        f"/v1/organizations/{org}/teams/{owners}/members", json={"email": manager.email}, headers=manager.auth
    )
    removed = client.delete(f"/v1/organizations/{org}/teams/{owners}/members/{co_owner.id}", headers=manager.auth)

    assert (joined.status_code, removed.status_code) == (403, 403)
    members = next(t for t in client.get(f"/v1/organizations/{org}/teams", headers=owner.auth).json() if t["owner"])[
        "members"
    ]
    assert sorted(m["id"] for m in members) == sorted([owner.id, co_owner.id])


def test_a_manager_adds_people_to_teams_within_their_own_permissions(client):
    owner = builders.person(client)
    org = builders.organization(client, owner)
    manager = builders.member(client, owner, org, ["org:manage", "org:view", "product:view"])
    viewers = builders.team(client, owner, org, ["product:view"])
    newcomer = builders.person(client, "Nina")

    answer = client.post(
        f"/v1/organizations/{org}/teams/{viewers}/members", json={"email": newcomer.email}, headers=manager.auth
    )

    assert answer.status_code == 201
