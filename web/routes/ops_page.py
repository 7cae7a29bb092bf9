"""`/ops`: the page for the person on call, rendered on the server (Jinja2, no build step).

Queues and dead letters (with their tracebacks and a requeue button), the last failed
operations (each one's page, `/ops/operations?q=<id or ref_...>`, shows its attempts and
last exception), webhook endpoints failing or disabled, and the last run of each
scheduler job (read and drawn by web/ops_dashboard.py). The page
fetches `/ops/fragment` every few seconds and swaps it in, so it stays current
without reloading by hand.

The ops token (settings, never an account key) is typed once into a login form; the
`tenure_ops` cookie then holds a signed session that expires (TENURE_OPS_SESSION_HOURS)
and ends when the token is rotated, never the token itself (web.ops_auth).
`require_ops` also accepts it on the JSON ops API. It is `Secure` when the page is served
over HTTPS (behind a proxy: uvicorn's trusted X-Forwarded-Proto), and HttpOnly.

CSRF: the only state-changing forms (login, logout, requeue) are plain POSTs
authenticated by that cookie. It is `SameSite=Strict`, so a browser never sends it on
a request started by another site; for this internal page that is the whole defence
(no CSRF token). Logging someone in with a forged token is impossible without the ops
token itself. Signing out clears the cookie in that browser; rotating the token ends
every session.
"""

from __future__ import annotations

from urllib.parse import urlencode

import anyio
import structlog
from litestar import MediaType, Request, Response, Router, get, post
from litestar.datastructures import Cookie
from litestar.params import FromPath
from litestar.response import Redirect

from runtime.clock import clock
from tables import operations
from web.errors import RateLimited, Unauthorized
from web.ops_auth import COOKIE, new_session, require_ops, token_matches
from web.ops_dashboard import NO_STORE, dashboard, html
from web.ratelimit import client_address

log = structlog.get_logger("tenure.ops_page")

DEFAULT_REFRESH_S = 5
MAX_REFRESH_S = 3600


def _refresh(value: str | None) -> int:
    try:
        seconds = int(value) if value else DEFAULT_REFRESH_S
    except ValueError:
        seconds = DEFAULT_REFRESH_S
    return min(max(seconds, 1), MAX_REFRESH_S)


def _back(refresh: int, **notice: str) -> str:
    """Where a form returns to: /ops, keeping a non-default refresh period."""
    query = {**({"refresh": str(refresh)} if refresh != DEFAULT_REFRESH_S else {}), **notice}
    return "/ops" + ("?" + urlencode(query) if query else "")


def _login(refresh: int, error: str | None, *, status: int = 401, headers: dict[str, str] | None = None) -> Response:
    action = "/ops/login" + _back(refresh).removeprefix("/ops")
    return html("ops_login.html", status=status, headers=headers, error=error, action=action)


async def _signed_in(request: Request) -> bool:
    try:
        await require_ops(request)  # the cookie, or `Authorization: Bearer` for curl
    except Unauthorized:
        return False
    return True


def _closed(request: Request) -> bool:
    return request.app.state.settings.ops_token is None


# --- routes ----------------------------------------------------------------------


@get("/", include_in_schema=False)
async def ops_page(request: Request) -> Response:
    refresh = _refresh(request.query_params.get("refresh"))
    if _closed(request):
        return html("ops_closed.html", status=401)
    if not await _signed_in(request):
        return _login(refresh, None)
    notice = None
    if requeued := request.query_params.get("requeued"):
        notice = ("ok", f"Requeued {requeued}.")
    elif missing := request.query_params.get("missing"):
        notice = ("warn", f"No dead letter {missing} any more (requeued already?).")
    return html(
        "ops.html",
        refresh=refresh,
        notice=notice,
        query=_back(refresh).removeprefix("/ops"),
        **await dashboard(request),
    )


@get("/fragment", include_in_schema=False)
async def ops_fragment(request: Request) -> Response:
    """The dashboard alone, for the page's periodic refresh."""
    if _closed(request) or not await _signed_in(request):
        return Response("signed out", status_code=401, media_type=MediaType.TEXT, headers=NO_STORE)
    refresh = _refresh(request.query_params.get("refresh"))
    return html("ops_dashboard.html", query=_back(refresh).removeprefix("/ops"), **await dashboard(request))


@get("/operations", include_in_schema=False)
async def ops_operation(request: Request) -> Response:
    """One operation by `?q=` id or `ref_...` reference: its attempts and last exception."""
    refresh = _refresh(request.query_params.get("refresh"))
    if _closed(request):
        return html("ops_closed.html", status=401)
    if not await _signed_in(request):
        return _login(refresh, None)
    key = (request.query_params.get("q") or "").strip()
    op = await operations.for_ops(key) if key else None
    return html("ops_operation.html", status=200 if op else 404, key=key, op=op)


@post("/login", include_in_schema=False, status_code=303)
async def ops_login(request: Request) -> Response:
    refresh = _refresh(request.query_params.get("refresh"))
    if _closed(request):
        return html("ops_closed.html", status=401)
    form = await request.form()
    token = str(form.get("token") or "").strip()
    limiter, address = request.app.state.limiter, client_address(request.scope)
    try:
        limiter.check_blocked(address)
        if not token_matches(request, token):
            await limiter.failed_auth(address)
            return _login(refresh, "That is not the ops token.")
    except RateLimited as refused:
        return _login(
            refresh,
            f"Too many failed sign-ins from your address: try again in {refused.retry_after} s.",
            status=429,
            headers=refused.headers,
        )
    settings = request.app.state.settings
    # The cookie holds a signed, expiring session, never the token (web.ops_auth).
    # SameSite=Strict is the CSRF defence for the POST forms (see the module docstring).
    cookie = Cookie(
        key=COOKIE,
        value=new_session(token, clock.now(), settings.ops_session_hours),
        path="/",
        max_age=settings.ops_session_hours * 3600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return Redirect(_back(refresh), status_code=303, cookies=[cookie], headers=NO_STORE)


@post("/logout", include_in_schema=False, status_code=303)
async def ops_logout(request: Request) -> Response:
    gone = Cookie(
        key=COOKIE,
        value="",
        path="/",
        max_age=0,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return Redirect("/ops", status_code=303, cookies=[gone], headers=NO_STORE)


@post("/dead-letters/{message_id:str}/requeue", include_in_schema=False, status_code=303)
async def ops_requeue(request: Request, message_id: FromPath[str]) -> Response:
    refresh = _refresh(request.query_params.get("refresh"))
    if _closed(request):
        return html("ops_closed.html", status=401)
    if not await _signed_in(request):
        return _login(refresh, "Log in again to requeue.")
    requeued = await anyio.to_thread.run_sync(request.app.state.monitor.requeue, message_id)
    log.info("ops_page_requeue", message_id=message_id, requeued=requeued)
    notice = {"requeued": message_id} if requeued else {"missing": message_id}
    return Redirect(_back(refresh, **notice), status_code=303, headers=NO_STORE)


ops_router = Router(
    path="/ops",
    route_handlers=[ops_page, ops_fragment, ops_operation, ops_login, ops_logout, ops_requeue],
    include_in_schema=False,
    tags=["ops"],
)
