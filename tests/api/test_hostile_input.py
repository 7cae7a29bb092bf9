"""Hostile input gets a 4xx naming what to fix, never a 500: control characters (NUL first)
in stored or looked-up strings, malformed webhook URLs, bodies that are not JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from math import floor

import pytest
from litestar.testing import TestClient
from standardwebhooks import Webhook

from tests.api import builders
from web.app import create_app

NUL = "\u0000"


@pytest.fixture
def owner(client):
    return builders.person(client)


@pytest.fixture
def reseller(client, owner):
    return builders.organization(client, owner, reseller=True)


def refused_naming(answer, field: str) -> None:
    message = builders.refused(answer, 400, "invalid_request")
    assert field in message, message


# --- bodies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("email", {"email": f"ada{NUL}@example.test", "name": "Ada"}),
        ("name", {"email": "ada.nul@example.test", "name": f"Ada{NUL}"}),
        ("name", {"email": "ada.tab@example.test", "name": "Ada\u0007Lovelace"}),
    ],
)
def test_an_account_with_a_control_character_is_refused_naming_the_field(client, field, body):
    answer = client.post("/v1/accounts", json=body)

    refused_naming(answer, field)


def test_an_organization_name_with_nul_is_refused(client, owner):
    answer = client.post("/v1/organizations", json={"name": f"Acme{NUL}"}, headers=owner.auth)

    refused_naming(answer, "name")
    assert client.get("/v1/me", headers=owner.auth).json()["organizations"] == []


def test_a_team_name_with_nul_is_refused(client, owner, reseller):
    answer = client.post(f"/v1/organizations/{reseller}/teams", json={"name": f"ops{NUL}"}, headers=owner.auth)

    refused_naming(answer, "name")


def test_a_member_email_with_nul_is_refused(client, owner, reseller):
    team = builders.owners_team(client, owner, reseller)

    answer = client.post(
        f"/v1/organizations/{reseller}/teams/{team}/members",
        json={"email": f"bob{NUL}@example.test"},
        headers=owner.auth,
    )

    refused_naming(answer, "email")


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("name", {"name": f"Dupont{NUL}", "email": "dupont@client.test"}),
        ("email", {"name": "Dupont", "email": f"dupont{NUL}@client.test"}),
        ("external_ref", {"name": "Dupont", "email": "dupont@client.test", "external_ref": f"crm-1{NUL}"}),
        ("external_ref", {"name": "Dupont", "email": "dupont@client.test", "external_ref": "crm-1\n"}),
    ],
)
def test_a_client_with_a_control_character_is_refused_naming_the_field(client, owner, reseller, field, body):
    answer = client.post(f"/v1/resellers/{reseller}/clients", json=body, headers=owner.auth)

    refused_naming(answer, field)
    assert client.get(f"/v1/resellers/{reseller}/clients", headers=owner.auth).json()["items"] == []


def test_a_purchase_for_a_client_id_with_nul_is_refused(client, owner, reseller):
    answer = client.post(
        f"/v1/organizations/{reseller}/purchases",
        headers=owner.auth,
        json={"kind": "mailbox", "name": "box", "years": 1, "payment_method": "prepaid", "client": f"cli_1{NUL}"},
    )

    refused_naming(answer, "client")


# --- path and query parameters --------------------------------------------------------------------


def test_an_id_with_nul_in_the_path_is_refused_naming_the_parameter(client, owner, reseller):
    team = builders.owners_team(client, owner, reseller)
    cases = {
        "org_id": ("GET", "/v1/organizations/org_1%00"),
        "client_id": ("GET", f"/v1/resellers/{reseller}/clients/cli_1%00"),
        "product_id": ("GET", "/v1/products/prd_1%00"),
        "operation_id": ("GET", "/v1/operations/op_1%00"),
        "member_id": ("DELETE", f"/v1/organizations/{reseller}/teams/{team}/members/acc_1%00"),
        "endpoint_id": ("DELETE", f"/v1/organizations/{reseller}/webhook-endpoints/whe_1%00"),
    }

    for parameter, (method, path) in cases.items():
        refused_naming(client.request(method, path, headers=owner.auth), parameter)


def test_a_cursor_or_filter_with_nul_in_the_query_is_refused_naming_the_parameter(client, owner, reseller):
    cases = {
        "after": f"/v1/resellers/{reseller}/clients?after=cli_1%00",
        "client": f"/v1/organizations/{reseller}/products?client=cli_1%00",
    }

    for parameter, path in cases.items():
        refused_naming(client.get(path, headers=owner.auth), parameter)
    refused_naming(client.get(f"/v1/organizations/{reseller}/products?after=%01", headers=owner.auth), "after")


def test_a_delivery_cursor_with_nul_is_refused(settings, database_url):
    allowing = type(settings)(database_url=database_url, allow_private_webhook_urls=True)
    with TestClient(create_app(allowing)) as client:
        owner = builders.person(client)
        org = builders.organization(client, owner)
        endpoint = client.post(
            f"/v1/organizations/{org}/webhook-endpoints", headers=owner.auth, json={"url": "http://127.0.0.1:9/hook"}
        ).json()["id"]

        answer = client.get(
            f"/v1/organizations/{org}/webhook-endpoints/{endpoint}/deliveries?after=x%00", headers=owner.auth
        )

    refused_naming(answer, "after")


def test_ops_filters_with_nul_are_refused(client):
    answer = client.get("/v1/ops/operations?kind=purchase%00", headers={"Authorization": "Bearer ops-secret"})

    refused_naming(answer, "kind")


# --- inbound webhooks -----------------------------------------------------------------------------


def signed_post(client, org: str, secret: str, payload: dict, content_type: str = "application/json"):
    body = json.dumps(payload)
    at = datetime.now(UTC)
    msg_id = f"msg_{floor(at.timestamp() * 1e6)}"
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(floor(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
        "content-type": content_type,
    }
    return client.post(f"/v1/inbound/{org}", content=body.encode(), headers=headers)


@pytest.fixture
def inbound_secret(client, owner, reseller):
    answer = client.post(f"/v1/resellers/{reseller}/inbound-secret", headers=owner.auth)
    assert answer.status_code == 201, answer.text
    return answer.json()["secret"]


@pytest.mark.parametrize(
    ("field", "data"),
    [
        ("external_ref", {"external_ref": f"crm-1{NUL}", "name": "Dupont", "email": "dupont@client.test"}),
        ("name", {"external_ref": "crm-1", "name": f"Dupont{NUL}", "email": "dupont@client.test"}),
        ("email", {"external_ref": "crm-1", "name": "Dupont", "email": f"dupont{NUL}@client.test"}),
    ],
)
def test_an_inbound_client_upsert_with_nul_is_refused_naming_the_field(
    client, owner, reseller, inbound_secret, field, data
):
    answer = signed_post(client, reseller, inbound_secret, {"type": "client.upserted", "data": data})

    refused_naming(answer, f"data.{field}")
    assert client.get(f"/v1/resellers/{reseller}/clients", headers=owner.auth).json()["items"] == []


def test_an_inbound_purchase_for_a_client_ref_with_nul_is_refused(client, reseller, inbound_secret):
    answer = signed_post(
        client,
        reseller,
        inbound_secret,
        {
            "type": "purchase.requested",
            "data": {"kind": "mailbox", "name": "box", "years": 1, "client_ref": f"crm-1{NUL}"},
        },
    )

    refused_naming(answer, "data.client_ref")


def test_an_inbound_webhook_that_is_not_json_is_refused_as_unsupported(client, reseller, inbound_secret):
    answer = signed_post(
        client,
        reseller,
        inbound_secret,
        {"type": "client.upserted", "data": {"external_ref": "crm-1", "name": "Dupont", "email": "dupont@client.test"}},
        content_type="text/plain",
    )

    builders.refused(answer, 415, "unsupported_media_type")


# --- webhook endpoint URLs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://" + "a" * 64 + ".example.com/hook",  # a DNS label longer than 63
        "https://" + ".".join(["a" * 63] * 3 + ["a" * 62]) + "/hook",  # a 254-character host
        "https://a..example.com/hook",  # an empty label
        f"https://exa{NUL}mple.com/hook",
        "https://exa mple.com/hook",
        "https://example.com:99999/hook",
        "https://[zz]/hook",
    ],
)
def test_a_malformed_webhook_url_is_refused_as_invalid_url(client, owner, reseller, url):
    answer = client.post(f"/v1/organizations/{reseller}/webhook-endpoints", json={"url": url}, headers=owner.auth)

    builders.refused(answer, 422, "invalid_url")
    assert client.get(f"/v1/organizations/{reseller}/webhook-endpoints", headers=owner.auth).json() == []


def test_a_malformed_webhook_url_is_refused_even_when_private_urls_are_allowed(settings, database_url):
    allowing = type(settings)(database_url=database_url, allow_private_webhook_urls=True)
    with TestClient(create_app(allowing)) as client:
        owner = builders.person(client)
        org = builders.organization(client, owner)

        answer = client.post(
            f"/v1/organizations/{org}/webhook-endpoints",
            headers=owner.auth,
            json={"url": "http://" + "a" * 64 + ".test/hook"},
        )

    builders.refused(answer, 422, "invalid_url")


# --- bodies that are not JSON ---------------------------------------------------------------------


def test_a_text_body_on_a_json_route_is_unsupported(client, owner):
    answer = client.post(
        "/v1/organizations", content=b'{"name": "Acme"}', headers={**owner.auth, "Content-Type": "text/plain"}
    )

    builders.refused(answer, 415, "unsupported_media_type")
    assert client.get("/v1/me", headers=owner.auth).json()["organizations"] == []


def test_a_form_body_on_a_json_route_is_unsupported(client, owner):
    answer = client.post("/v1/organizations", data={"name": "Acme"}, headers=owner.auth)

    message = builders.refused(answer, 415, "unsupported_media_type")
    assert "application/json" in message


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "\xff"}',  # not UTF-8
        b'{"name": ',  # truncated
        b'{"name": NaN}',
        b"[]",
        b"   ",
    ],
)
def test_a_malformed_json_body_gets_a_json_400(client, owner, body):
    answer = client.post("/v1/organizations", content=body, headers={**owner.auth, "Content-Type": "application/json"})

    builders.refused(answer, 400, "invalid_request")


def test_huge_numbers_get_a_json_400_naming_the_field(client, owner, reseller):
    headers = {**owner.auth, "Content-Type": "application/json"}
    too_big = client.post(
        f"/v1/organizations/{reseller}/funds",
        headers=headers,
        content=b'{"amount": {"amount": 1' + b"0" * 400 + b', "currency": "EUR"}}',
    )
    overflow = client.post(
        f"/v1/organizations/{reseller}/funds",
        headers=headers,
        content=b'{"amount": {"amount": 1e999, "currency": "EUR"}}',
    )

    refused_naming(too_big, "amount")
    refused_naming(overflow, "amount")
