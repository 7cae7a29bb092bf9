"""The ops token: `Authorization: Bearer <TENURE_OPS_TOKEN>` (or the /ops page's cookie)."""

from __future__ import annotations

import hmac

from litestar import Request

from web.errors import Unauthorized

COOKIE = "tenure_ops"


def token_matches(request: Request, presented: str | None) -> bool:
    expected = request.app.state.settings.ops_token
    return bool(expected and presented and hmac.compare_digest(presented.encode(), expected.encode()))


async def require_ops(request: Request) -> None:
    """Dependency for ops routes: the ops token from settings, never an account key."""
    if request.app.state.settings.ops_token is None:
        raise Unauthorized("ops routes are closed: set TENURE_OPS_TOKEN to open them")
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token_matches(request, presented.strip()):
        return
    if token_matches(request, request.cookies.get(COOKIE)):
        return
    raise Unauthorized("send the ops token as 'Authorization: Bearer <TENURE_OPS_TOKEN>'")
