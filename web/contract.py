"""The OpenAPI document, made exact: Litestar generates it, this module completes it once.

Litestar writes paths, parameters, request and answer schemas from the handlers. What it
cannot know is added here, from the code, in one pass over the generated document
(`complete`, run by the render plugins given to the app's `OpenAPIConfig`):

- every error answer a route can give, as tenure answers it (`{"error": {"code",
  "message"}, "status"}`), per status, with the enum of the codes that route can produce:
  web/error_codes.py reads them from the handler and everything it calls (see there how);
- `Retry-After` on 429, on 409 where a request with the same Idempotency-Key still runs,
  and on 503;
- the schemas of request and answer bodies as msgspec itself writes them for their Structs
  (Litestar's loses constraints on list items): exactly what the decoder enforces, with
  `additionalProperties: false` where a Struct refuses unknown fields (web/strict_schemas.py);
- the pattern every path and query string is held to (no control characters: web/edge.py;
  written by web/strict_schemas.py);
- examples for requests and answers (web/examples.py);
- the events tenure sends, as OpenAPI 3.1 `webhooks` (web/event_catalog.py).

A new route gets all of it from the same machinery: nothing here names a route.
"""

from __future__ import annotations

import copy
from http import HTTPStatus
from typing import Any

from litestar import Litestar
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin, YamlRenderPlugin
from litestar.routes import HTTPRoute

from web import error_codes, examples, strict_schemas
from web.idempotent_posts import NO_KEY_ROUTES, OPERATION_ROUTES
from web.ratelimit import ROUTE_LIMITS

_COMPLETED = "completed_openapi_schema"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

DESCRIPTION = """\
Every error answers `{"error": {"code": "...", "message": "..."}, "status": <http status>}`;
each operation lists, per status, the codes it can answer. A method a path does not take
answers 405 `method_not_allowed` with an `Allow` header naming the methods it takes.
State-changing POSTs take an `Idempotency-Key` header; operation requests take `Dry-Run: 1`.
Bodies are decoded strictly: an integer field (an amount in minor units, a term in years)
refuses `2.0` and `"2"`, and an object refuses fields it does not list.
The events tenure posts to webhook endpoints are described under `webhooks`.
"""


def route_codes(route: HTTPRoute, handler: Any, method: str) -> dict[int, list[str]]:
    """{status: [codes]} a route's handler can answer with an error, read from the code."""
    index = error_codes.index()
    roots = [error_codes.qualified_name(handler.fn), "web.edge.check_parameters"]
    used = set(handler.parsed_fn_signature.parameters)
    for name, provider in handler.resolve_dependencies().items():
        if name in used:
            roots.append(error_codes.qualified_name(provider.dependency))
    data = handler.parsed_fn_signature.parameters.get("data")
    structs = error_codes.struct_types(data.annotation) if data is not None else []
    roots += [error_codes.qualified_name(cls) for cls in structs]
    if method == "GET" and route.path_format.startswith("/v1/"):
        roots.append("web.listing.reject_unknown_parameters")
    if method in BODY_METHODS and structs:
        roots.append("web.strict_body.strict_body")
    if method == "POST" and route.path_format not in OPERATION_ROUTES | NO_KEY_ROUTES:
        roots.append("web.idempotent_posts.IdempotentPosts.handle")
    if (method, route.path_format) in ROUTE_LIMITS:
        roots.append("web.ratelimit.Limiter.hit")
    found = index.codes(roots)
    if _has_query_or_body(route, handler, method):
        found.add((400, "invalid_request"))  # Litestar's own validation of parameters and bodies
    if method in BODY_METHODS:
        found.add((413, "body_too_large"))  # Litestar's request_max_body_size (web/errors.py)
    if route.path_format.startswith("/v1/"):
        found.add((503, "database_unavailable"))
    by_status: dict[int, list[str]] = {}
    for status, code in sorted(found):
        by_status.setdefault(status, []).append(code)
    return by_status


def _has_query_or_body(route: HTTPRoute, handler: Any, method: str) -> bool:
    model = handler.create_kwargs_model(path_parameters=dict.fromkeys(route.path_parameters))
    return method in BODY_METHODS or bool(model.expected_query_params)


def error_schema(codes: list[str]) -> dict:
    return {
        "type": "object",
        "required": ["error", "status"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {
                        "type": "string",
                        "enum": codes,
                        "description": "machine-readable; the message says what to fix",
                    },
                    "message": {"type": "string"},
                },
            },
            "status": {"type": "integer", "description": "the HTTP status, repeated"},
        },
    }


RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}


def error_response(status: int, codes: list[str]) -> dict:
    answer: dict = {
        "description": HTTPStatus(status).phrase,
        "content": {
            "application/json": {
                "schema": error_schema(codes),
                "example": {"error": {"code": codes[0], "message": examples.error_message(codes[0])}, "status": status},
            }
        },
    }
    if status in (429, 503) or "idempotency_key_in_use" in codes:
        answer["headers"] = {
            **RETRY_AFTER,
            **({"Retry-After": {**RETRY_AFTER["Retry-After"], "required": True}} if status == 429 else {}),
        }
    return answer


def complete(app: Litestar, generated: dict) -> dict:
    """The generated document with the contract's errors, strictness, examples and webhooks."""
    from web import event_catalog

    document = copy.deepcopy(generated)
    document["info"]["description"] = DESCRIPTION
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        item = document["paths"].get(route.path_format or "/")
        if item is None:
            continue
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            for method in handler.http_methods:
                operation = item.get(method.lower())
                if operation is None:
                    continue
                responses = operation["responses"]
                for status in [s for s in responses if s.startswith(("4", "5"))]:
                    del responses[status]  # Litestar's own error shape: tenure answers its own
                for status, codes in route_codes(route, handler, method).items():
                    responses[str(status)] = error_response(status, codes)
                strict_schemas.plain_text_parameters(operation)
    schemas = document["components"]["schemas"]
    schemas.update(strict_schemas.struct_schemas(set(schemas)))
    for name in strict_schemas.request_components(document):
        strict_schemas.instants_as_patterns(schemas[name])
    examples.add(document)
    document["webhooks"] = event_catalog.webhooks(schemas)
    return document


def completed(app: Litestar, generated: dict) -> dict:
    """`complete`, once per app (the document does not change while it runs)."""
    cached = app.state.get(_COMPLETED)
    if cached is None:
        cached = complete(app, generated)
        app.state[_COMPLETED] = cached
    return cached


class _Completes:
    def render(self, request: Any, openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, completed(request.app, openapi_schema))  # type: ignore[misc]


class ContractJson(_Completes, JsonRenderPlugin):
    """/schema/openapi.json, completed."""


class ContractYaml(_Completes, YamlRenderPlugin):
    """/schema/openapi.yaml, completed."""


class ContractSwagger(_Completes, SwaggerRenderPlugin):
    """/schema/swagger, the completed document, browsable."""


def render_plugins() -> list:
    return [ContractSwagger(path="/swagger"), ContractJson(), ContractYaml()]
