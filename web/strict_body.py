"""Request bodies are decoded strictly: `10.0` or `"1000"` is not an integer amount.

Litestar converts bodies leniently (whole floats and numeric strings become ints).
Money is integer minor units, so before a handler runs, its JSON body is decoded once
more with msgspec in strict mode against the handler's own `data` type. A body that is
not JSON (by its Content-Type, or by its bytes) is refused here too, as JSON 4xx.
"""

from __future__ import annotations

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException

from web.errors import InvalidRequest, UnsupportedMediaType
from web.schemas.common import PATTERN_MEANINGS

_BODY_METHODS = {"POST", "PUT", "PATCH"}


def _data_type(request: Request):
    parameter = request.route_handler.parsed_fn_signature.parameters.get("data")
    return parameter.annotation if parameter is not None else None


def is_json(request: Request) -> bool:
    """The body is declared as JSON: `application/json` or an `application/...+json` type."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def require_json(request: Request) -> None:
    if not is_json(request):
        raise UnsupportedMediaType("send the body as JSON, with the header Content-Type: application/json")


def what_it_holds(wanted: type[msgspec.Struct]) -> str:
    """`an object with name (required), reseller` for a body Struct: what to send."""
    fields = msgspec.structs.fields(wanted)
    if not fields:
        return "an object, {} will do"
    return "an object with " + ", ".join(f"{f.encode_name} (required)" if f.required else f.encode_name for f in fields)


def explain(exc: msgspec.ValidationError) -> str:
    """msgspec's message, with each of our string patterns said in words; it names the field."""
    message = str(exc)
    for pattern, meaning in PATTERN_MEANINGS.items():
        message = message.replace(f"`str` matching regex {pattern!r}", meaning)
    return message


async def strict_body(request: Request) -> None:
    if request.method not in _BODY_METHODS:
        return
    wanted = _data_type(request)
    if wanted is None or not (isinstance(wanted, type) and issubclass(wanted, msgspec.Struct)):
        return
    body = await request.body()
    if not body.strip():
        raise InvalidRequest(
            f"this request needs a JSON body (Content-Type: application/json): {what_it_holds(wanted)}"
        )
    require_json(request)
    try:
        msgspec.json.decode(body, type=wanted, strict=True)
    except msgspec.ValidationError as exc:
        message = explain(exc)
        raise ValidationException(detail=message, extra=[{"message": message}]) from None
    except (msgspec.DecodeError, RecursionError) as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"the body is not valid UTF-8: {exc.reason} at byte {exc.start}") from None
