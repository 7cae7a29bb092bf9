"""Named API errors and the one place that turns every error into an HTTP answer."""

from __future__ import annotations

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from rules.errors import RuleViolation
from tables import engine

log = structlog.get_logger("tenure.web")


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(ApiError):
    """The request itself is malformed (as Litestar's own validation answers)."""

    status, code = 400, "invalid_request"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class NotFound(ApiError):
    """Unknown id, or one the caller may not see: the answer is the same."""

    status, code = 404, "not_found"

    def __init__(self, noun: str, ident: str) -> None:
        super().__init__(f"no {noun} {ident!r} is visible to you")


class Conflict(ApiError):
    status = 409

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Invalid(ApiError):
    status = 422

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class IdempotencyKeyInUse(Conflict):
    """A request with this Idempotency-Key is still running (web/idempotent_posts.py)."""

    def __init__(self) -> None:
        super().__init__(
            "idempotency_key_in_use",
            "a request with this Idempotency-Key is still being processed; retry "
            "after Retry-After seconds to get its answer",
        )
        self.headers = {"Retry-After": "1"}


class RateLimited(ApiError):
    """Over a rate limit (web.ratelimit); `retry_after` seconds until the next request may pass."""

    status, code = 429, "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


class UnknownParameter(ApiError):
    """A query parameter the route does not take (a typo would otherwise filter nothing)."""

    status, code = 400, "unknown_parameter"


class InvalidCursor(ApiError):
    status, code = 400, "invalid_cursor"


class InvalidQuery(ApiError):
    """A query parameter of the right type that still cannot be used (say, a time without offset)."""

    status, code = 400, "invalid_request"


class BadHeader(ApiError):
    """A request header with a value tenure does not accept; the message names the header."""

    status = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class BadFilter(ApiError):
    """A list filter (query parameter) with a value that cannot select anything; the code names it."""

    status = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        content={"error": {"code": code, "message": message}, "status": status},
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def _api_error(_: Request, exc: ApiError) -> Response:
    return error_response(exc.status, exc.code, exc.message, getattr(exc, "headers", None))


# The HTTP status of each rule violation's code; any other code answers 422 (the request is
# well formed but breaks a rule). rules/ raises codes only; this is where they meet HTTP.
RULE_STATUSES: dict[str, int] = {
    "already_claimed": 409,
    "client_not_active": 409,
    "client_not_released": 409,
    "credit_limit_exceeded": 409,
    "expiry_mismatch": 409,
    "insufficient_funds": 409,
    "invalid_month": 400,
    "last_owner": 409,
    "name_taken": 409,
    "not_a_reseller": 409,
    "not_found": 404,
    "not_renewable": 409,
    "payment_method_not_allowed": 403,
    "permission_denied": 403,
    "settlement_exceeds_owed": 409,
    "unknown_currency": 400,
}


def rule_status(code: str) -> int:
    return RULE_STATUSES.get(code, 422)


def _rule_violation(_: Request, exc: RuleViolation) -> Response:
    return error_response(rule_status(exc.code), exc.code, exc.message)


def _validation(_: Request, exc: ValidationException) -> Response:
    details = "; ".join(
        f"{item.get('message')}" + (f" (in {item['key']})" if item.get("key") else "")
        for item in (exc.extra or [])
        if isinstance(item, dict)
    )
    return error_response(400, "invalid_request", details or exc.detail)


_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def _http(_: Request, exc: HTTPException) -> Response:
    # Litestar's own headers stay: `Allow` on a 405 names the methods the path takes.
    return error_response(
        exc.status_code,
        _CODES.get(exc.status_code, "http_error"),
        exc.detail,
        dict(exc.headers) if exc.headers else None,
    )


DATABASE_RETRY_AFTER_S = 2


def _database_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("database_unavailable", path=request.url.path, error=f"{type(exc).__name__}: {exc}"[:200])
    response = error_response(
        503,
        "database_unavailable",
        "the database cannot be reached right now; retry in a few seconds (with the same "
        "Idempotency-Key, so that a request that was recorded after all counts once)",
    )
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
    return response


def _unexpected(request: Request, exc: Exception) -> Response:
    if engine.unreachable(exc):  # the driver's own errors: no class of ours to map
        return _database_unavailable(request, exc)
    log.exception("unhandled_error", path=request.url.path)
    return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")


EXCEPTION_HANDLERS = {
    ApiError: _api_error,
    RuleViolation: _rule_violation,
    ValidationException: _validation,
    HTTPException: _http,
    Exception: _unexpected,
}
