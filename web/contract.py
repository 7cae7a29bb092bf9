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
  `additionalProperties: false` where a Struct refuses unknown fields;
- the pattern every path and query string is held to (no control characters: web/edge.py);
- examples for requests and answers (web/examples.py);
- the events tenure sends, as OpenAPI 3.1 `webhooks` (web/event_catalog.py).

A new route gets all of it from the same machinery: nothing here names a route.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Litestar
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin, YamlRenderPlugin
from litestar.routes import HTTPRoute

from web import error_codes, examples
from web.idempotent_posts import NO_KEY_ROUTES, OPERATION_ROUTES
from web.listing import NO_NUL
from web.ratelimit import ROUTE_LIMITS
from web.schemas.common import TEXT_PATTERN

_COMPLETED = "completed_openapi_schema"
REF = "#/components/schemas/{name}"
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


def _structs(cls: type = msgspec.Struct) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _structs(sub)


def _struct_schemas(names: set[str]) -> dict[str, dict]:
    """msgspec's own schema for each component that is one of our Structs (by its name)."""
    ours: dict[str, list[type]] = {}
    for cls in _structs():
        if cls.__module__.startswith(("web.", "tables.")) and cls.__name__ in names:
            ours.setdefault(cls.__name__, []).append(cls)
    unique = [found[0] for found in ours.values() if len(set(found)) == 1]
    _, components = msgspec.json.schema_components(unique, ref_template=REF)
    for cls in unique:
        _datetime_formats(cls, components[cls.__name__])
    return components


def _datetime_formats(cls: type, schema: dict) -> None:
    """msgspec writes a datetime as a bare string: it is an RFC 3339 `date-time`."""
    info = msgspec.inspect.type_info(cls)
    for field_info in info.fields:
        kind = field_info.type
        while isinstance(kind, msgspec.inspect.Metadata):
            kind = kind.type
        kinds = kind.types if isinstance(kind, msgspec.inspect.UnionType) else (kind,)
        if any(isinstance(k, msgspec.inspect.DateTimeType) for k in kinds):
            prop = schema["properties"][field_info.encode_name]
            for branch in prop.get("anyOf", [prop]):
                if branch.get("type") == "string":
                    branch["format"] = "date-time"


# RFC 3339 as msgspec reads it, years from 1 and days up to 28 so that every match is a real date: a
# generator given only `format: date-time` may send "" or February 30th.
INSTANT_PATTERN = (
    r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
    r"[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])$"
)


def _instants_as_patterns(schema: object) -> None:
    """Gives the date-time strings of a request schema their pattern (answers keep the format)."""
    if isinstance(schema, dict):
        if schema.get("format") == "date-time" and "pattern" not in schema:
            schema["pattern"] = INSTANT_PATTERN
        for value in schema.values():
            _instants_as_patterns(value)
    elif isinstance(schema, list):
        for value in schema:
            _instants_as_patterns(value)


def _request_components(document: dict) -> set[str]:
    """The components a request body refers to, directly or through other components."""
    todo = [
        op["requestBody"]
        for item in document["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "requestBody" in op
    ]
    found: set[str] = set()
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[-1]
                if name not in found:
                    found.add(name)
                    todo.append(document["components"]["schemas"][name])
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return found


# web/edge.py's rule for path and query strings, without a look-ahead (generators read this
# form better; in a JSON Schema pattern `$` is the end of the string, line break or not).
PARAMETER_TEXT = r"^[^\x00-\x1f\x7f-\x9f]*$"
PATH_TEXT = r"^[^\x00-\x1f\x7f]*$"  # web/edge.py: a path refuses C0 and DEL only


def _without_null(schema: dict) -> dict:
    """A parameter is a string in a URL: `null` (an omitted optional one, in Litestar's schema)
    cannot be sent, so it is not offered."""
    for key in ("oneOf", "anyOf"):
        branches = [b for b in schema.get(key, []) if b.get("type") != "null"]
        if key in schema and len(branches) == 1:
            schema = {**branches[0], **{k: v for k, v in schema.items() if k != key}}
    if isinstance(schema.get("type"), list) and "null" in schema["type"]:
        kinds = [t for t in schema["type"] if t != "null"]
        schema = {**schema, "type": kinds[0] if len(kinds) == 1 else kinds}
        if "enum" in schema:
            schema["enum"] = [value for value in schema["enum"] if value is not None]
    return schema


def _plain_text_parameters(operation: dict) -> None:
    """Path and query strings carry no control characters (web/edge.py refuses them: 400)."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] not in ("path", "query"):
            continue
        schema = parameter["schema"] = _without_null(parameter["schema"])
        plain = PATH_TEXT if parameter["in"] == "path" else PARAMETER_TEXT
        if schema.get("pattern") in (NO_NUL, TEXT_PATTERN):
            schema["pattern"] = plain
        for branch in schema.get("oneOf", schema.get("anyOf", [schema])):
            if branch.get("format") == "date-time":
                branch["pattern"] = INSTANT_PATTERN
            elif (
                branch.get("type") == "string"
                and branch.get("pattern") in (None, NO_NUL, TEXT_PATTERN)
                and "enum" not in branch
            ):
                branch["pattern"] = plain


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
                _plain_text_parameters(operation)
    schemas = document["components"]["schemas"]
    schemas.update(_struct_schemas(set(schemas)))
    for name in _request_components(document):
        _instants_as_patterns(schemas[name])
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
