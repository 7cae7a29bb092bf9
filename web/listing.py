"""What every list route shares: strict query parameters, opaque keyset cursors, the CSV choice.

- Query parameters a route does not declare are refused (400 `unknown_parameter`) for every
  GET under /v1, once, by `reject_unknown_parameters` (a before-request hook): a misspelt
  filter must not silently return everything. So are a parameter given twice and `null` for
  one that is not text (Litestar would read it as "not given": the filter would vanish).
- A cursor is the (sort key, id) of the last row of a page, with the sort it was made for,
  as base64url JSON; clients pass `next_cursor` back as `after` and never build one.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request
from piccolo.columns import Column, Timestamptz

from tables.keyset import Keyset
from web.errors import InvalidCursor, InvalidQuery, UnknownParameter
from web.schemas.common import Row

CSV = "text/csv"
# Query text never holds NUL: PostgreSQL cannot store or compare it (a 400, not a 500).
NO_NUL = r"^[^\x00]*$"
_DECLARED = "declared_query_parameters"


@dataclass(frozen=True)
class _Declared:
    sequence: bool  # may be given more than once
    text: bool  # a string: `null` is a value like any other


def _declared(request: Request) -> dict[str, _Declared]:
    """The query parameters the route's handler (and its dependencies) declare, computed once."""
    cache: dict[int, dict[str, _Declared]] = request.app.state.setdefault(_DECLARED, {})
    handler = request.route_handler
    names = cache.get(id(handler))
    if names is None:
        model = handler.create_kwargs_model(path_parameters=dict.fromkeys(request.path_params))
        fields = handler.parsed_fn_signature.parameters
        names = {
            p.field_alias: _Declared(
                sequence=p.is_sequence, text=p.field_name not in fields or _takes_text(fields[p.field_name])
            )
            for p in model.expected_query_params
        }
        cache[id(handler)] = names
    return names


def _takes_text(field: Any) -> bool:
    kinds = [t for t in (field.inner_types if field.is_union else (field,)) if not t.is_none_type]
    return any(kind.annotation is str for kind in kinds)


def reject_unknown_parameters(request: Request) -> None:
    if request.method != "GET" or not request.url.path.startswith("/v1/"):
        return
    given = set(request.query_params.keys())
    if not given:
        return
    declared = _declared(request)
    unknown = sorted(given - set(declared))
    if unknown:
        accepted = ", ".join(sorted(declared)) or "none"
        raise UnknownParameter(f"unknown query parameter(s): {', '.join(unknown)}; this route accepts: {accepted}")
    for name in sorted(given):
        values = request.query_params.getall(name)
        if len(values) > 1 and not declared[name].sequence:
            raise InvalidQuery(f"give the query parameter {name} once")
        if "null" in values and not declared[name].text:  # Litestar would read it as "not given"
            raise InvalidQuery(f"the query parameter {name} cannot be null; leave it out instead")


def wants_csv(request: Request) -> bool:
    """`Accept: text/csv` (preferred to JSON) asks for the whole filtered result as CSV."""
    return request.accept.best_match(["application/json", CSV], default="application/json") == CSV


def aware(name: str, value: datetime | None) -> datetime | None:
    """RFC 3339 instants carry their offset; a bare local time would be read differently per backend."""
    if value is not None and value.utcoffset() is None:
        raise InvalidQuery(f"{name} needs a time zone offset (RFC 3339), e.g. 2027-01-31T00:00:00Z")
    try:
        return value.astimezone(UTC) if value is not None else None
    except OverflowError:
        raise InvalidQuery(f"{name} is out of range once in UTC; send a time between years 1 and 9999") from None


# --- cursors -------------------------------------------------------------------------


def _encode_key(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def encode_cursor(sort: str, descending: bool, row: dict, key_name: str) -> str:
    raw = json.dumps(
        {"s": sort, "d": descending, "k": _encode_key(row[key_name]), "i": row["id"]}, separators=(",", ":")
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text: str, sort: str, descending: bool, key: Column) -> tuple[Any, str]:
    """The (key, id) a cursor resumes after; InvalidCursor if it is not one this list made."""
    problem = InvalidCursor(
        "`after` is not a cursor from this list; pass the `next_cursor` of the "
        "previous page unchanged, or leave `after` out to start again"
    )
    try:
        decoded = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        made_for, made_descending, value, last_id = decoded["s"], decoded["d"], decoded["k"], decoded["i"]
    except (ValueError, TypeError, KeyError, binascii.Error, RecursionError):
        raise problem from None
    if not (isinstance(made_for, str) and len(made_for) <= 20 and isinstance(made_descending, bool)):
        raise problem
    if (made_for, made_descending) != (sort, descending):
        raise InvalidCursor(
            f"this cursor continues sort={made_for}&order={'desc' if made_descending else 'asc'}; "
            "keep the same sort and order while paging, or leave `after` out to start again"
        )
    if not (isinstance(last_id, str) and isinstance(value, str)) or "\x00" in last_id + value:
        raise problem
    if isinstance(key, Timestamptz):
        try:
            value = datetime.fromisoformat(value)
            if value.utcoffset() is None:
                raise ValueError("no offset")
            value = value.astimezone(UTC)
        except (ValueError, OverflowError):
            raise problem from None
    return value, last_id


def keyset_for(
    sorts: dict[str, Column],
    sort: str | None,
    order: str | None,
    after: str | None,
    *,
    default: str = "id",
    default_order: str = "asc",
) -> tuple[Keyset, str]:
    """The keyset a list reads in (the column named by `sort`, ties by id) and the sort's name."""
    name = sort or default
    descending = (order or default_order) == "desc"
    column = sorts[name]
    resume = decode_cursor(after, name, descending, column) if after else None
    return Keyset(column, sorts["id"], descending, resume), name


def cut(rows: list[Row], limit: int, keyset: Keyset, sort: str) -> tuple[list[Row], str | None]:
    """Rows fetched with `limit + 1` (dicts, or records whose fields are named as the columns):
    the page, and the cursor to the next one (None at the end)."""
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        fields = last if isinstance(last, dict) else msgspec.structs.asdict(last)
        return rows, encode_cursor(sort, keyset.descending, fields, keyset.key_name)
    return rows, None
