"""Request bodies are decoded strictly: `10.0` or `"1000"` is not an integer amount.

Litestar converts bodies leniently (whole floats and numeric strings become ints).
Money is integer minor units, so before a handler runs, its JSON body is decoded once
more with msgspec in strict mode against the handler's own `data` type.
"""

from __future__ import annotations

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException

_BODY_METHODS = {"POST", "PUT", "PATCH"}


def _data_type(request: Request):
    parameter = request.route_handler.parsed_fn_signature.parameters.get("data")
    return parameter.annotation if parameter is not None else None


async def strict_body(request: Request) -> None:
    if request.method not in _BODY_METHODS:
        return
    wanted = _data_type(request)
    if wanted is None or not (isinstance(wanted, type) and issubclass(wanted, msgspec.Struct)):
        return
    body = await request.body()
    if not body:
        return  # Litestar reports the missing body itself
    try:
        msgspec.json.decode(body, type=wanted, strict=True)
    except msgspec.ValidationError as exc:
        raise ValidationException(detail=str(exc), extra=[{"message": str(exc)}]) from None
    except msgspec.DecodeError:
        return  # not JSON: Litestar answers that itself
