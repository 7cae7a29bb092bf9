"""Webhook endpoint management: URL rules, event types, secrets shown once, tenancy."""

from __future__ import annotations

import pytest

from tests.api import builders


def create(client, who, org, url, event_types=None):
    return client.post(
        f"/v1/organizations/{org}/webhook-endpoints",
        headers=who.auth,
        json={"url": url, "event_types": event_types or []},
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "http://localhost/hook",
        "http://10.0.0.8/hook",
        "http://[::1]/hook",
        "ftp://example.com/hook",
    ],
)
def test_loopback_private_and_non_http_urls_are_refused(client, url):
    owner = builders.person(client)
    org = builders.organization(client, owner)

    answer = create(client, owner, org, url)

    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid_webhook_url"
    assert client.get(f"/v1/organizations/{org}/webhook-endpoints", headers=owner.auth).json() == []


def test_unknown_event_types_are_refused_naming_them(client):
    owner = builders.person(client)
    org = builders.organization(client, owner)

    answer = create(client, owner, org, "http://127.0.0.1/x", ["product.bought"])

    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "unknown_event_type"
    assert "product.bought" in answer.json()["error"]["message"]


def test_the_secret_is_shown_once_and_endpoints_can_be_deleted(settings, database_url):
    from litestar.testing import TestClient

    from web.app import create_app

    allowing = type(settings)(database_url=database_url, allow_private_webhook_urls=True)
    with TestClient(create_app(allowing)) as client:
        owner = builders.person(client)
        org = builders.organization(client, owner)
        created = create(client, owner, org, "http://127.0.0.1:9/hook", ["tier.changed"])
        listed = client.get(f"/v1/organizations/{org}/webhook-endpoints", headers=owner.auth).json()
        deleted = client.delete(f"/v1/organizations/{org}/webhook-endpoints/{created.json()['id']}", headers=owner.auth)
        after = client.get(f"/v1/organizations/{org}/webhook-endpoints", headers=owner.auth).json()

    assert created.status_code == 201 and created.json()["secret"].startswith("whsec_")
    assert [(e["id"], e["event_types"], e["secret"]) for e in listed] == [
        (created.json()["id"], ["tier.changed"], None)
    ]
    assert deleted.status_code == 204 and after == []


def test_endpoints_are_private_to_members_with_webhook_manage(client):
    owner = builders.person(client)
    org = builders.organization(client, owner)
    stranger = builders.person(client)
    builders.organization(client, stranger)
    viewer = builders.member(client, owner, org, ["org:view", "product:view"])

    assert create(client, owner, org, "http://127.0.0.1/x").status_code == 422  # private: refused here
    assert client.get(f"/v1/organizations/{org}/webhook-endpoints").status_code == 401
    assert client.get(f"/v1/organizations/{org}/webhook-endpoints", headers=stranger.auth).status_code == 404
    refused = client.get(f"/v1/organizations/{org}/webhook-endpoints", headers=viewer.auth)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    assert (
        client.get(f"/v1/organizations/{org}/webhook-endpoints/whe_x/deliveries", headers=owner.auth).status_code == 404
    )


@pytest.mark.parametrize("url", ["http://127.0.0.1:9000/hook", "http://10.0.0.8/hook", "ftp://example.com/hook"])
def test_a_new_url_goes_through_the_same_checks_as_at_creation(client, settings, database_url, url):
    from litestar.testing import TestClient

    from web.app import create_app

    allowing = type(settings)(database_url=database_url, allow_private_webhook_urls=True)
    with TestClient(create_app(allowing)) as permissive:
        owner = builders.person(permissive)
        org = builders.organization(permissive, owner)
        hook = create(permissive, owner, org, "http://127.0.0.1:9/hook").json()["id"]

    answer = client.patch(f"/v1/organizations/{org}/webhook-endpoints/{hook}", headers=owner.auth, json={"url": url})

    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "invalid_webhook_url"
    listed = client.get(f"/v1/organizations/{org}/webhook-endpoints", headers=owner.auth).json()
    assert [e["url"] for e in listed] == ["http://127.0.0.1:9/hook"]
