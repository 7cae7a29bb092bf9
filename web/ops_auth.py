"""The ops token: `Authorization: Bearer <TENURE_OPS_TOKEN>`, or the /ops page's session cookie.

The cookie never holds the token: it is `<expiry>.<HMAC-SHA256 of the expiry>`, keyed with
a key derived from the token. It ends at its expiry (TENURE_OPS_SESSION_HOURS after the
sign-in), and every session ends at once when the token is rotated (the key changes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

from litestar import Request
from litestar.di import NamedDependency

from runtime.clock import clock
from web.errors import Unauthorized
from web.ratelimit import client_address

# A handler's `ops` parameter: the ops token checked (dependency `ops`, web.routes.ops).
OpsAccess = NamedDependency[None]

NO_OPS_TOKEN = "send the ops token as 'Authorization: Bearer <TENURE_OPS_TOKEN>'"
COOKIE = "tenure_ops"
_SESSION_PURPOSE = b"tenure /ops session v1"


def token_matches(request: Request, presented: str | None) -> bool:
    expected = request.app.state.settings.ops_token
    return bool(expected and presented and hmac.compare_digest(presented.encode(), expected.encode()))


def _mac(token: str, expires: int) -> str:
    key = hmac.new(token.encode(), _SESSION_PURPOSE, hashlib.sha256).digest()
    digest = hmac.new(key, str(expires).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_session(token: str, now: datetime, hours: int) -> str:
    """The cookie value of a session signed in at `now`, valid `hours`."""
    expires = int((now + timedelta(hours=hours)).timestamp())
    return f"{expires}.{_mac(token, expires)}"


def session_valid(token: str | None, cookie: str | None, now: datetime, hours: int) -> bool:
    """Signed with the current token, not expired, and not longer than the current setting allows."""
    if not token or not cookie:
        return False
    expires, _, mac = cookie.partition(".")
    if not expires.isdigit() or len(expires) > 12:
        return False
    if not hmac.compare_digest(mac.encode(), _mac(token, int(expires)).encode()):
        return False
    left = int(expires) - now.timestamp()
    return 0 < left <= hours * 3600


def session_cookie_valid(request: Request) -> bool:
    settings = request.app.state.settings
    return session_valid(settings.ops_token, request.cookies.get(COOKIE), clock.now(), settings.ops_session_hours)


async def require_ops(request: Request) -> None:
    """Dependency for ops routes: the ops token from settings, never an account key.

    A wrong bearer token counts against the caller's address (web.ratelimit: 429 past the limit)."""
    if request.app.state.settings.ops_token is None:
        raise Unauthorized("ops routes are closed: set TENURE_OPS_TOKEN to open them")
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and presented.strip():
        limiter = request.app.state.limiter
        address = client_address(request.scope)
        limiter.check_blocked(address)
        if token_matches(request, presented.strip()):
            return
        await limiter.failed_auth(address)
    if session_cookie_valid(request):
        return
    raise Unauthorized(NO_OPS_TOKEN)
