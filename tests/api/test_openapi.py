"""The generated OpenAPI document describes the contract's routes and the bearer key."""

from __future__ import annotations

import json

import pytest
from litestar.routes import HTTPRoute

ROUTES = [
    ("post", "/v1/accounts"),
    ("post", "/v1/accounts/claim"),
    ("get", "/v1/me"),
    ("post", "/v1/organizations"),
    ("get", "/v1/organizations/{org_id}"),
    ("get", "/v1/organizations/{org_id}/teams"),
    ("post", "/v1/organizations/{org_id}/teams"),
    ("post", "/v1/organizations/{org_id}/teams/{team_id}/members"),
    ("delete", "/v1/organizations/{org_id}/teams/{team_id}/members/{member_id}"),
    ("post", "/v1/organizations/{org_id}/leave"),
    ("post", "/v1/organizations/{org_id}/funds"),
    ("get", "/v1/organizations/{org_id}/billing"),
    ("get", "/v1/catalog"),
    ("post", "/v1/resellers/{org_id}/clients"),
    ("get", "/v1/resellers/{org_id}/clients"),
    ("get", "/v1/resellers/{org_id}/clients/{client_id}"),
    ("post", "/v1/resellers/{org_id}/clients/{client_id}/claim"),
    ("patch", "/v1/resellers/{org_id}/clients/{client_id}"),
    ("delete", "/v1/resellers/{org_id}/clients/{client_id}"),
    ("get", "/v1/organizations/{org_id}/products"),
    ("get", "/v1/organizations/{org_id}/operations"),
]

PUBLIC = [("post", "/v1/accounts"), ("post", "/v1/accounts/claim"), ("get", "/v1/catalog")]


@pytest.fixture
def schema(client):
    answer = client.get("/schema/openapi.json")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/")
    return json.loads(answer.content)


def test_the_schema_is_an_openapi_document(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "tenure"
    assert isinstance(schema["paths"], dict)


def app_routes(app) -> list[tuple[str, str]]:
    """Every (method, path) the app serves and documents, from its own routes."""
    return sorted(
        {
            (method.lower(), route.path_format)
            for route in app.routes
            if isinstance(route, HTTPRoute)
            for handler in route.route_handlers
            if handler.resolve_include_in_schema()
            for method in handler.http_methods
        }
    )


def test_the_schema_lists_every_route(client, schema):
    served = app_routes(client.app)
    documented = sorted(
        (method, path)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    )

    assert set(ROUTES) <= set(served)  # the contract's routes, written out, are among them
    assert len(served) >= 45
    assert documented == served


def test_the_schema_declares_the_bearer_key(schema):
    schemes = schema["components"]["securitySchemes"]
    bearer = [name for name, s in schemes.items() if s.get("type") == "http" and s.get("scheme") == "bearer"]

    assert bearer, schemes
    assert {bearer[0]: []} in schema["security"]


@pytest.mark.parametrize("method, path", PUBLIC)
def test_public_routes_are_declared_without_a_key(schema, method, path):
    operation = schema["paths"][path][method]

    # An operation-level requirement overrides the document's; [] or [{}] means no key needed
    # ({} beside a scheme: the key is optional, as for a claim).
    assert {} in operation.get("security", [None]), operation.get("security")


@pytest.mark.parametrize("method, path", [r for r in ROUTES if r not in PUBLIC])
def test_other_routes_require_the_key(schema, method, path):
    operation = schema["paths"][path][method]

    assert operation.get("security", schema["security"]) == schema["security"]


def test_the_documented_answers_use_the_contract_field_names(schema):
    created = schema["paths"]["/v1/accounts"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    component = _resolve(schema, created)

    assert {"id", "email", "api_key"} <= set(component["properties"])


def test_every_post_declares_the_idempotency_key_header(schema):
    posts = {path: item["post"] for path, item in schema["paths"].items() if "post" in item}
    # A signed inbound webhook's key is its webhook-id (documented on the route).
    keyed = {path: op for path, op in posts.items() if path != "/v1/inbound/{org_id}"}

    missing = [
        path
        for path, op in keyed.items()
        if not any(
            p["in"] == "header" and p["name"] == "Idempotency-Key" and not p.get("required")
            for p in op.get("parameters", [])
        )
    ]

    assert len(keyed) >= 15 and missing == []
    assert all(
        "Idempotency-Key" not in repr(item.get("get", {}).get("parameters", [])) for item in schema["paths"].values()
    )


def _resolve(schema: dict, ref: dict) -> dict:
    name = ref["$ref"].rsplit("/", 1)[-1]
    return schema["components"]["schemas"][name]


DRY_RUN_ROUTES = [
    ("post", "/v1/organizations/{org_id}/purchases"),
    ("post", "/v1/products/{product_id}/renewals"),
    ("post", "/v1/products/{product_id}/transfers"),
    ("post", "/v1/resellers/{org_id}/clients/{client_id}/release"),
    ("post", "/v1/organizations/{org_id}/renewals"),
]


@pytest.mark.parametrize("method, path", DRY_RUN_ROUTES)
def test_the_dry_run_header_and_its_answer_are_declared(schema, method, path):
    operation = schema["paths"][path][method]
    header = [p for p in operation.get("parameters", []) if p["in"] == "header" and p["name"] == "Dry-Run"]

    assert len(header) == 1 and header[0]["required"] is False, operation.get("parameters")
    assert header[0]["schema"]["enum"] == ["1"]
    assert "202" in operation["responses"]
    answer = _resolve(schema, operation["responses"]["200"]["content"]["application/json"]["schema"])
    assert {"dry_run", "quote", "would_fail"} <= set(answer["properties"])


def test_the_bulk_renewal_is_declared_with_its_items(schema):
    operation = schema["paths"]["/v1/organizations/{org_id}/renewals"]["post"]
    body = _resolve(schema, operation["requestBody"]["content"]["application/json"]["schema"])
    items = body["properties"]["items"]
    item = _resolve(schema, items["items"])

    assert (items["minItems"], items["maxItems"]) == (1, 1000)
    assert set(item["required"]) == {"product_id", "years", "current_expires_at"}
    assert "payment_method" in item["properties"]
    assert operation.get("security", schema["security"]) == schema["security"]
    quote = schema["components"]["schemas"]["QuoteOut"]
    assert set(quote["properties"]) == {
        "price",
        "list_price",
        "discount_percent",
        "tier",
        "restore_fee",
        "new_expires_at",
        "payer",
        "payment_method",
    }
