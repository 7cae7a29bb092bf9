"""The OpenAPI document says what the API really answers: each error a route gives is documented
on that route, with its status, its shape and its code in the route's enum."""

from __future__ import annotations

import pytest

from tests.api import builders
from web import error_codes
from web.contract import route_codes


@pytest.fixture
def schema(client):
    return client.get("/schema/openapi.json").json()


def documented_codes(schema: dict, method: str, path: str, status: int) -> list[str]:
    answer = schema["paths"][path][method.lower()]["responses"].get(str(status))
    assert answer is not None, f"{method} {path} does not document {status}"
    body = answer["content"]["application/json"]["schema"]
    assert body["required"] == ["error", "status"]
    return body["properties"]["error"]["properties"]["code"]["enum"]


def assert_documented(schema: dict, method: str, path: str, answer) -> str:
    """The answer's code is in the enum its route documents for its status; returns the code."""
    code = answer.json()["error"]["code"]
    assert code in documented_codes(schema, method, path, answer.status_code), (method, path, answer.text)
    return code


def test_errors_really_answered_are_in_their_routes_enums(client, schema):
    owner, org = builders.funded(client, 10_000)
    reseller = builders.organization(client, owner, reseller=True)
    viewer = builders.member(client, owner, org, ["org:view"])
    seen = set()

    def check(method: str, path: str, answer, status: int) -> None:
        assert answer.status_code == status, answer.text
        seen.add(assert_documented(schema, method, path, answer))

    check("POST", "/v1/accounts", client.post("/v1/accounts", json={"email": owner.email, "name": "Again"}), 409)
    check(
        "POST",
        "/v1/organizations/{org_id}/leave",
        client.post(f"/v1/organizations/{org}/leave", headers=owner.auth),
        409,
    )
    check("GET", "/v1/organizations/{org_id}", client.get("/v1/organizations/org_nope", headers=owner.auth), 404)
    check(
        "GET",
        "/v1/organizations/{org_id}/billing",
        client.get(f"/v1/organizations/{org}/billing", headers=viewer.auth),
        403,
    )
    check(
        "GET",
        "/v1/organizations/{org_id}/products",
        client.get(f"/v1/organizations/{org}/products?colour=red", headers=owner.auth),
        400,
    )
    check(
        "GET",
        "/v1/organizations/{org_id}/products",
        client.get(f"/v1/organizations/{org}/products?after=nonsense", headers=owner.auth),
        400,
    )
    check("GET", "/v1/me", client.get("/v1/me"), 401)
    check(
        "POST",
        "/v1/organizations/{org_id}/teams",
        client.post(f"/v1/organizations/{org}/teams", json={"name": "x", "permissions": ["fly"]}, headers=owner.auth),
        422,
    )
    check(
        "POST",
        "/v1/resellers/{org_id}/clients",
        client.post(f"/v1/resellers/{org}/clients", json={"name": "C", "email": "c@c.test"}, headers=owner.auth),
        409,
    )
    check(
        "POST",
        "/v1/organizations/{org_id}/purchases",
        client.post(
            f"/v1/organizations/{org}/purchases",
            headers={**owner.auth, "Dry-Run": "yes"},
            json={"kind": "domain", "name": "a.fr", "years": 1, "payment_method": "prepaid"},
        ),
        400,
    )
    check(
        "POST",
        "/v1/organizations/{org_id}/purchases",
        client.post(
            f"/v1/organizations/{org}/purchases",
            headers=owner.auth,
            json={"kind": "domain", "name": "a.fr", "years": 1, "payment_method": "prepaid", "client": "cli_x"},
        ),
        422,
    )
    check(
        "POST",
        "/v1/organizations/{org_id}/funds",
        client.post(
            f"/v1/organizations/{org}/funds",
            headers={**owner.auth, "Idempotency-Key": "k" * 201},
            json={"amount": {"amount": 1, "currency": "EUR"}},
        ),
        422,
    )
    check(
        "POST",
        "/v1/resellers/{org_id}/clients",
        client.post(f"/v1/resellers/{reseller}/clients", content=b"name=x", headers=owner.auth),
        415,
    )
    check(
        "PATCH",
        "/v1/products/{product_id}",
        client.patch("/v1/products/prd_nope", json={"autorenew": True}, headers=owner.auth),
        404,
    )

    assert {
        "email_taken",
        "last_owner",
        "not_found",
        "permission_denied",
        "unknown_parameter",
        "invalid_cursor",
        "unauthorized",
        "unknown_permission",
        "not_a_reseller",
        "invalid_dry_run",
        "client_not_allowed",
        "invalid_idempotency_key",
        "unsupported_media_type",
    } <= seen


def test_a_code_raised_deep_in_the_rules_reaches_the_enum_of_the_routes_that_call_them(client):
    purchase = route_of(client.app, "POST", "/v1/organizations/{org_id}/purchases")

    codes = route_codes(*purchase, "POST")

    # rules.names (IDNA checks), tables (name held), rules.ledger (balance), the edge (body, key)
    assert {"invalid_name", "insufficient_funds", "unknown_product_kind"} <= set(codes[422] + codes[409])
    assert "name_taken" in codes[409] and "payment_method_not_allowed" in codes[403]
    assert "unauthorized" in codes[401] and "rate_limited" in codes[429]
    assert "invalid_request" in codes[400] and "unsupported_media_type" in codes[415]
    assert "email_taken" not in [code for found in codes.values() for code in found]  # another route's


def test_the_index_follows_imports_methods_and_constructors():
    index = error_codes.index()

    # web.access.access -> Access.require -> rules.permissions.require -> PermissionDenied
    assert (403, "permission_denied") in index.codes(["web.access.access"])
    # IdempotencyKeyInUse() passes its code to Conflict's constructor
    assert (409, "idempotency_key_in_use") in index.codes(["web.idempotent_posts.IdempotentPosts.handle"])
    assert index.codes(["web.routes.ops.health"]) == set()


def route_of(app, method: str, path: str):
    from litestar.routes import HTTPRoute

    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path_format == path:
            for handler in route.route_handlers:
                if method in handler.http_methods:
                    return route, handler
    raise AssertionError(f"no {method} {path}")


def test_request_schemas_that_refuse_unknown_fields_say_so(client, schema):
    owner, org = builders.funded(client, 10_000)
    purchase = schema["components"]["schemas"]["PurchaseIn"]

    answer = client.post(
        f"/v1/organizations/{org}/purchases",
        headers=owner.auth,
        json={"kind": "domain", "name": "a.fr", "years": 1, "payment_method": "prepaid", "colour": "red"},
    )

    assert purchase["additionalProperties"] is False
    assert answer.status_code == 400 and "colour" in answer.json()["error"]["message"]


def test_list_item_constraints_are_documented(schema):
    organizations = schema["components"]["schemas"]["ApiKeyIn"]["properties"]["organizations"]
    array = next(b for b in organizations["anyOf"] if b.get("type") == "array")

    assert array["items"]["maxLength"] == 200 and "pattern" in array["items"]


def test_a_method_the_path_does_not_take_answers_405_naming_the_ones_it_does(client):
    answer = client.put("/v1/accounts", json={})
    options = client.options("/v1/me/keys")

    assert answer.status_code == 405 and answer.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in answer.headers["allow"]
    assert options.status_code == 204
    assert set(options.headers["allow"].split(", ")) == {"GET", "POST", "OPTIONS"}


def test_an_empty_body_says_a_json_body_is_needed_and_what_it_holds(client):
    owner = builders.person(client)

    answer = client.post("/v1/organizations", headers=owner.auth)

    assert answer.status_code == 400
    message = answer.json()["error"]["message"]
    assert "JSON body" in message and "name (required)" in message and "reseller" in message
    assert "'data'" not in message


def test_no_key_is_refused_before_anything_else_is_checked(client):
    answer = client.get("/v1/products/%01")

    assert answer.status_code == 401 and answer.json()["error"]["code"] == "unauthorized"


def test_rate_limits_and_retries_document_retry_after(schema):
    signup = schema["paths"]["/v1/accounts"]["post"]["responses"]

    assert "rate_limited" in documented_codes(schema, "POST", "/v1/accounts", 429)
    assert signup["429"]["headers"]["Retry-After"]["required"] is True
    assert "idempotency_key_in_use" in documented_codes(schema, "POST", "/v1/accounts", 409)
    assert "Retry-After" in signup["409"]["headers"]


def test_bodies_and_answers_carry_examples(schema):
    components = schema["components"]["schemas"]

    assert components["PurchaseIn"]["examples"][0]["kind"] == "domain"
    assert components["OperationOut"]["examples"][0]["status"] == "succeeded"
    for item in schema["paths"].values():
        for operation in item.values():
            for status, answer in operation.get("responses", {}).items():
                if status.startswith("4"):
                    example = answer["content"]["application/json"]["example"]
                    assert (
                        example["error"]["code"]
                        in answer["content"]["application/json"]["schema"]["properties"]["error"]["properties"]["code"][
                            "enum"
                        ]
                    )
