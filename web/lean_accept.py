"""The purchase route's common case, answered without Litestar's per-request machinery.

`POST /v1/organizations/{org_id}/purchases` is the hot path of ingress. Litestar's handler path
around it (the before-request checks, dependency injection of the caller, the body decoded
leniently and then strictly, the signature model, the response object and its serialisation)
cost the web process more CPU than the handler itself. `LeanPurchases` runs, for a request
that is plainly well-formed (no query string, no Dry-Run header, a JSON Content-Type and a
body that decodes strictly to `PurchaseIn`), the same steps as the route's handler
(`web.routes.products.ProductController.purchase`): the caller from the API key (401/429),
their access to the organization (404/403), the purchase's checks and its one statement,
and the 202 with the operation, encoded as Litestar encodes it. Its errors go through the
app's exception handlers, as the handler's do. Anything else (a dry run, a malformed or
unexpected request) takes the handler's path unchanged, which answers it as before; the
route, and its OpenAPI description, stay the handler's.

It is the innermost of the app's middleware, so the Prometheus, rate-limit and idempotency
middleware see the request as they see any other.
"""

from __future__ import annotations

import msgspec
from litestar import Request
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.middleware._internal.exceptions.middleware import ExceptionHandlerMiddleware
from litestar.serialization import encode_json
from litestar.types import ASGIApp, Receive, Scope, Send

from web.access import access, provide_account
from web.edge import PATH_CONTROL
from web.routes.products import accept_purchase
from web.schemas.products import PurchaseIn
from web.strict_body import is_json

PURCHASES = "/v1/organizations/{org_id}/purchases"
_JSON = (b"content-type", b"application/json")
_NEXT = "lean_purchase_next_app"


async def plain_purchase(request: Request) -> PurchaseIn | None:
    """The body, if the request is one the lean path answers exactly as the handler would."""
    headers = request.headers
    if request.scope.get("query_string") or "dry-run" in headers or "authorization" not in headers:
        return None
    org_id = request.path_params.get("org_id")
    if not isinstance(org_id, str) or PATH_CONTROL.search(org_id) or not is_json(request):
        return None
    body = await request.body()  # kept on the scope: the handler's path reads it again from there
    try:
        return msgspec.json.decode(body, type=PurchaseIn, strict=True)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        return None


class LeanPurchases(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self) -> None:
        self._answer = ExceptionHandlerMiddleware(app=self._purchase, debug=None)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope.get("path_template") != PURCHASES or scope.get("method") != "POST":
            await next_app(scope, receive, send)
            return
        scope.setdefault("state", {})[_NEXT] = next_app
        await self._answer(scope, receive, send)

    async def _purchase(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`ProductController.purchase` without a Dry-Run header, step for step; or the handler's
        path, for a request that is not plainly well-formed."""
        next_app = scope["state"].pop(_NEXT)
        request: Request = Request(scope, receive)
        data = await plain_purchase(request)
        if data is None:
            await next_app(scope, receive, send)
            return
        org_id = request.path_params["org_id"]
        account = await provide_account(request)
        found = await access(account, org_id)
        op = await accept_purchase(request, found, account, org_id, data)
        body = encode_json(op)
        headers = [(b"content-length", str(len(body)).encode()), _JSON]
        await send({"type": "http.response.start", "status": 202, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
