"""What every request is checked for once, before its handler runs.

Strings in the JSON bodies are checked by their schema types (web/schemas/); path and
query parameters, which reach lookups and cursors, are checked here the same way: no
control characters (NUL makes PostgreSQL fail, the rest have no place in an id, a
cursor or a filter), and a query parameter the route does not declare is refused
(web/listing.py). Then the body is decoded strictly (web/strict_body.py).
"""

from __future__ import annotations

import re

from litestar import Request, Response

from web.access import require_credentials
from web.errors import InvalidRequest
from web.listing import reject_unknown_parameters
from web.schemas.common import CONTROL_CHARACTERS, PATTERN_MEANINGS, TEXT_PATTERN
from web.strict_body import strict_body

_CONTROL = re.compile(f"[{CONTROL_CHARACTERS}]")
# A path only names what to look up: C0 and DEL are refused (NUL breaks PostgreSQL, line breaks
# break logs); any other character just finds nothing (404).
PATH_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PLAIN_TEXT = PATTERN_MEANINGS[TEXT_PATTERN]


def control_character_at(value: object) -> str | None:
    """Where (`$.data.name`) the first string holding a control character is in decoded JSON."""
    todo: list[tuple[str, object]] = [("$", value)]
    while todo:  # a loop, not recursion: nesting depth is the sender's choice
        where, item = todo.pop()
        if isinstance(item, str):
            if _CONTROL.search(item):
                return where
        elif isinstance(item, dict):
            todo.extend(reversed([(f"{where}.{key}", inner) for key, inner in item.items()]))
        elif isinstance(item, list):
            todo.extend(reversed([(f"{where}[{index}]", inner) for index, inner in enumerate(item)]))
    return None


def refuse_control_characters(decoded: object) -> None:
    """400 `invalid_request` naming the field, if any string in decoded JSON has a control character."""
    where = control_character_at(decoded)
    if where:
        raise InvalidRequest(f"Expected {_PLAIN_TEXT} - at `{where}`")


def check_parameters(request: Request) -> None:
    for name, value in request.path_params.items():
        if isinstance(value, str) and PATH_CONTROL.search(value):
            raise InvalidRequest(f"Expected {_PLAIN_TEXT} - in the path parameter `{name}`")
    for name, value in request.query_params.multi_items():
        if _CONTROL.search(value):
            shown = repr(name[:40]) if _CONTROL.search(name) else name[:40]
            raise InvalidRequest(f"Expected {_PLAIN_TEXT} - in the query parameter `{shown}`")


def allowed_methods(request: Request) -> str:
    """The methods of the request's path, as `Allow` lists them (computed once per path)."""
    cache: dict[str, str] = request.app.state.setdefault("allowed_methods", {})
    template = request.scope.get("path_template") or request.url.path
    if template not in cache:
        methods = {
            method
            for route in request.app.routes
            if route.path_format == template
            for method in getattr(route, "methods", ())
        }
        cache[template] = ", ".join(sorted(methods | {"OPTIONS"}))
    return cache[template]


async def edge_checks(request: Request) -> Response | None:
    if request.method == "OPTIONS":
        # Litestar's own answer lists only the methods of the first handler registered on the
        # path (a GET and a POST on one path: `Allow: OPTIONS, POST`); every method, here.
        return Response(None, status_code=204, headers={"Allow": allowed_methods(request)})
    require_credentials(request)
    check_parameters(request)
    reject_unknown_parameters(request)
    await strict_body(request)
    return None
