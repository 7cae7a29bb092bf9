"""Idempotency-Key on every synchronous POST: the first answer, replayed.

One mechanism for every POST route but the operation routes (purchases, renewals,
transfers, releases, funds: their key names the operation they made, in
`operations.idem_key`) and inbound webhooks (their `webhook-id` is the key):

- the key is scoped to the caller (the account behind the API key; a digest of any other
  Authorization header, such as the ops token; the client's address for anonymous calls,
  sign-up and claim), the method and the path: another caller's key is another key;
- the first request inserts a `pending` row (tables/idempotency.py) before its handler
  runs; a concurrent request with the same key finds it and answers 409
  `idempotency_key_in_use` with Retry-After: 1, without running the handler;
- the handler's answer is stored (2xx, and the 4xx of the request's own business: 403,
  404, 409, 422...) and a later request with the same key and the same body gets it again,
  status and body, with the header `Idempotent-Replayed: true`; another body with that key
  is 422 `idempotency_key_reused`;
- nothing is stored for answers that say the request was never taken up (400 malformed,
  401, 413, 415, 429) nor for 5xx or a crash: the pending row is deleted and the client
  may retry with the same key. A pending row left by a process that died is taken over
  after PENDING_STALE.

Every stored body is encrypted with the at-rest cipher (tables.secrets_at_rest), whether
or not it shows a secret (API keys at sign-up and claim, webhook and inbound secrets, claim
tokens are shown once): a replay shows the same secret to the same caller. Stored answers
are deleted after 24 h by the retention job.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

import anyio
import msgspec
import structlog
from litestar import Litestar, Request
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.openapi.spec import OpenAPIType, Operation, Parameter, Schema
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from runtime.clock import clock
from runtime.ids import new_id
from tables import api_keys
from tables import idempotency as stored
from tables.engine import transaction
from web import idempotency
from web.edge import check_parameters
from web.errors import IdempotencyKeyInUse, InvalidRequest
from web.ratelimit import client_address
from web.strict_body import _data_type

log = structlog.get_logger("tenure.web")

# POST routes (by path template, as Litestar formats it) whose Idempotency-Key is kept by the operation they make.
OPERATION_ROUTES = frozenset(
    {
        "/v1/organizations/{org_id}/purchases",
        "/v1/products/{product_id}/renewals",
        "/v1/products/{product_id}/transfers",
        "/v1/resellers/{org_id}/clients/{client_id}/release",
        "/v1/organizations/{org_id}/funds",
        "/v1/organizations/{org_id}/billing/settlements",
        "/v1/organizations/{org_id}/renewals",  # a bulk renewal: its batch operation holds the key
        "/v1/organizations/{org_id}/test-clock",  # a sandbox's clock advance
    }
)
# POST routes that take no Idempotency-Key: a signed inbound webhook's key is its webhook-id.
NO_KEY_ROUTES = frozenset({"/v1/inbound/{org_id}"})

# Answers saying the request was not taken up: the same key may be sent again, fixed.
NOT_KEPT = frozenset({400, 401, 405, 408, 413, 415, 429})
PENDING_STALE = timedelta(minutes=5)  # no request runs this long; its process died


def keeps_answer(status: int, media_type: str | None) -> bool:
    """A JSON 2xx or 4xx the handler decided (or a 204) is replayed; anything else is not."""
    if status == 204:
        return True
    if status in NOT_KEPT or not (200 <= status < 300 or 400 <= status < 500):
        return False
    kind = (media_type or "").partition(";")[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


async def caller_of(request: Request) -> str:
    """Whose keys these are: an account, another bearer (by digest), or an anonymous address."""
    header = request.headers.get("authorization")
    if header is None:
        return f"address:{client_address(request.scope)}"
    scheme, _, key = header.partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        account = await api_keys.authenticate(key.strip(), clock.now())
        if account is not None:
            return f"account:{account.id}"
    # Not an account's key (the ops token, or a wrong key that the handler answers 401):
    # only a digest is kept, and only a request sending this exact header shares it.
    return "token:" + hashlib.sha256(header.encode()).hexdigest()[:40]


def decoded(request: Request, body: bytes) -> object:
    """The body as the handler reads it (so whitespace and key order do not matter), None for
    a route without one; the raw bytes when it does not decode (the handler answers 400)."""
    wanted = _data_type(request)
    if wanted is None:
        return None
    try:
        if isinstance(wanted, type) and issubclass(wanted, msgspec.Struct):
            return msgspec.json.decode(body, type=wanted, strict=True)
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        return body


def _media_type(start: Message) -> str | None:
    for name, value in start.get("headers", []):
        if name.lower() == b"content-type":
            return value.decode("latin-1")
    return None


async def _replay(send: Send, row: dict) -> None:
    body = stored.body_of(row)
    headers = [(b"content-length", str(len(body)).encode()), (b"idempotent-replayed", b"true")]
    if row["media_type"]:
        headers.append((b"content-type", row["media_type"].encode("latin-1")))
    await send({"type": "http.response.start", "status": row["status"], "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class IdempotentPosts(ASGIMiddleware):
    """Runs a POST sent with an Idempotency-Key once per caller and key (see the module)."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        template = scope.get("path_template")
        if scope.get("method") != "POST" or template in OPERATION_ROUTES or template in NO_KEY_ROUTES:
            await next_app(scope, receive, send)
            return
        request: Request = Request(scope, receive)
        try:
            check_parameters(request)
        except InvalidRequest:  # refused with its 400 by the edge checks, before any key is kept
            await next_app(scope, receive, send)
            return
        key = idempotency.client_key(request)
        if key is None:
            await next_app(scope, receive, send)
            return
        body = await request.body()  # kept on the scope: the handler reads it again from there
        caller = await caller_of(request)
        path = request.url.path
        wanted = idempotency.request_hash(request, decoded(request, body))
        now, holder = clock.now(), new_id("idm")
        row = {
            "id": stored.row_id(caller, "POST", path, key),
            "caller": caller,
            "method": "POST",
            "path": path,
            "idem_key": key,
            "request_hash": wanted,
            "holder": holder,
            "status": None,
            "media_type": None,
            "sealed_body": None,
            "created_at": now,
        }
        async with transaction():
            existing = await stored.begin(row)
        if existing is not None:
            idempotency.check_same_request(existing.get("request_hash"), wanted)
            if existing["status"] is not None:
                log.info("idempotent_replay", path=path, status=existing["status"])
                await _replay(send, existing)
                return
            async with transaction():
                taken = await stored.take_over(row["id"], holder, now - PENDING_STALE, now)
            if not taken:
                raise IdempotencyKeyInUse()
        await self._first(scope, receive, send, next_app, row["id"], holder)

    async def _first(
        self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp, row_id: str, holder: str
    ) -> None:
        """Runs the handler, keeps its answer (or lets the key go), then sends the answer: a
        retry arriving once the client has it finds it stored."""
        messages: list[Message] = []

        async def hold(message: Message) -> None:
            messages.append(message)

        settled = False
        try:
            await next_app(scope, receive, hold)
            start = next((m for m in messages if m["type"] == "http.response.start"), None)
            if start is not None and keeps_answer(start["status"], media_type := _media_type(start)):
                body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
                settled = True  # if storing fails the row stays pending: no second run before PENDING_STALE
                try:
                    async with transaction():
                        await stored.finish(row_id, holder, start["status"], media_type, body)
                except Exception as exc:
                    log.warning("idempotent_answer_not_stored", error=f"{type(exc).__name__}: {exc}"[:200])
        finally:
            if not settled:
                with anyio.CancelScope(shield=True):
                    try:
                        async with transaction():
                            await stored.abandon(row_id, holder)
                    except Exception as exc:
                        log.warning("idempotent_key_not_released", error=f"{type(exc).__name__}: {exc}"[:200])
        for message in messages:
            await send(message)


# --- the OpenAPI document ---------------------------------------------------------------------

IDEMPOTENCY_KEY = Parameter(
    name="Idempotency-Key",
    param_in="header",
    required=False,
    schema=Schema(
        type=OpenAPIType.STRING, min_length=1, max_length=idempotency.MAX_KEY_LENGTH, pattern=idempotency.KEY_PATTERN
    ),
    description="1-200 visible ASCII characters (a UUID will do), new for each new request. Sent again with the "
    "same body within 24 h, the request is not made twice: the first answer is returned, "
    "status and body (for a request that makes an operation: that operation). Another "
    "body with the same key is 422 `idempotency_key_reused`; while the first request "
    "runs, 409 `idempotency_key_in_use` (retry after Retry-After). Keys are the caller's "
    "own: another caller's same key is another key.",
)


@dataclass
class IdempotentOperation(Operation):
    """An OpenAPI operation that declares the Idempotency-Key header."""

    def __post_init__(self) -> None:
        self.parameters = [*(self.parameters or []), IDEMPOTENCY_KEY]


def document_idempotency_key(app: Litestar) -> None:
    """Every POST route that takes an Idempotency-Key declares it in the OpenAPI document."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path_format in NO_KEY_ROUTES:
            continue
        for handler in route.route_handlers:
            if "POST" in handler.http_methods:
                handler.operation_class = IdempotentOperation
