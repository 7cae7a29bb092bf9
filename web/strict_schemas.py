"""The OpenAPI document's schemas, made as strict as tenure's decoding (run by web.contract):

- request and answer bodies as msgspec itself writes their Structs' schemas (Litestar's loses
  constraints on list items), `additionalProperties: false` where a Struct refuses unknown
  fields, and `date-time` on its instants;
- an RFC 3339 pattern on every instant a request sends, so that a generator sends real dates;
- the pattern every path and query string is held to (no control characters: web/edge.py),
  and no `null` offered for a parameter that is a string in a URL.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from web.listing import NO_NUL
from web.schemas.common import TEXT_PATTERN

REF = "#/components/schemas/{name}"


def _structs(cls: type = msgspec.Struct) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _structs(sub)


def struct_schemas(names: set[str]) -> dict[str, dict]:
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


def instants_as_patterns(schema: object) -> None:
    """Gives the date-time strings of a request schema their pattern (answers keep the format)."""
    if isinstance(schema, dict):
        if schema.get("format") == "date-time" and "pattern" not in schema:
            schema["pattern"] = INSTANT_PATTERN
        for value in schema.values():
            instants_as_patterns(value)
    elif isinstance(schema, list):
        for value in schema:
            instants_as_patterns(value)


def request_components(document: dict) -> set[str]:
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


def plain_text_parameters(operation: dict) -> None:
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
