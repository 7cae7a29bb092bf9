"""Rate limits: what one client address, or one API key, may do in a moving window.

Per client address (the one uvicorn reports, after trusted proxies' X-Forwarded-For):
- `auth_failures`: wrong API keys and wrong ops tokens (a success is not counted). Once an
  address is over the limit, this process refuses every authentication from it, right or
  wrong, until the window frees a slot: a guess that happens to be right gains nothing.
- `signups` (`POST /v1/accounts`) and `claims` (`POST /v1/accounts/claim`), every attempt,
  applied by route in `RouteLimits` so the handlers know nothing of it.
Per API key: `per_key`, every request made with it (counted once the key is known).

The windows live in Redis when there is one (TENURE_RATE_LIMIT_URL, else a redis://
broker), so every web process shares them: one Lua call, one round trip, per hit; except
`per_key`, which a process takes from the window in blocks of `block_of(limit)` (a
fiftieth of the limit, at most MAX_BLOCK; 1 for limits under 100) and spends locally until
the block runs out or its window passes. A key can thus be refused while up to a block per
other web process is taken but not yet spent (2 % of its limit each), never let through
past it. Without
Redis (a RabbitMQ broker, the embedded mode) each process counts in its own memory. A
storage failure lets requests through (a limit protects, it decides nothing) and the
limiter stops asking the storage for PAUSE_S, as the broker's sender does.
"""

from __future__ import annotations

import math
import time

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from runtime.settings import Settings
from web.errors import RateLimited
from web.metrics import RATE_LIMITED

log = structlog.get_logger("tenure.ratelimit")

NAMES = ("per_key", "auth_failures", "signups", "claims")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
OFF = "off"
PAUSE_S = 2.0
REDIS_TIMEOUT_S = 1.0  # a hung Redis costs a request at most this, then PAUSE_S of no limits
KEY_PREFIX = "tenure:ratelimit"
MAX_BLOCK = 50  # per_key hits taken from the shared window at once (see the module)
BLOCKED_NAMES = frozenset({"per_key"})
MAX_BLOCKED = 10_000  # addresses remembered as over the auth-failure limit, per process

# (method, route) -> the limit counted against the client's address for every attempt.
ROUTE_LIMITS = {
    ("POST", "/v1/accounts"): "signups",
    ("POST", "/v1/accounts/claim"): "claims",
}

MESSAGES = {
    "per_key": "this API key made more than {limit} requests; slow down and retry in {retry} s",
    "auth_failures": "too many failed authentications from your address (more than {limit}); "
    "check your API key or token and retry in {retry} s",
    "signups": "too many sign-ups from your address (more than {limit}); retry in {retry} s",
    "claims": "too many claim attempts from your address (more than {limit}); retry in {retry} s",
}


def limit_item(name: str, value: str) -> RateLimitItem | None:
    """A setting's limit ("20/minute", "10 per hour"), or None for "off"."""
    if value.strip().lower() == OFF:
        return None
    try:
        return parse(value)
    except ValueError:
        raise ValueError(
            f"TENURE_RATE_LIMIT_{name.upper()}={value!r} is not a rate limit: "
            f"write it as '20/minute' or '10 per hour', or 'off'"
        ) from None


def limit_items(settings: Settings) -> dict[str, RateLimitItem | None]:
    """Every limit from the settings; ValueError naming the variable for one that does not parse."""
    return {name: limit_item(name, getattr(settings, f"rate_limit_{name}")) for name in NAMES}


def check_settings(settings: Settings) -> None:
    """Raises ValueError now (when the app is built) for a limit or storage URL that cannot work."""
    limit_items(settings)
    storage_url(settings)


def storage_url(settings: Settings) -> str:
    """Where the windows live: TENURE_RATE_LIMIT_URL, else a Redis broker, else memory."""
    if settings.rate_limit_url:
        url = settings.rate_limit_url
        if not url.startswith((*REDIS_SCHEMES, "memory://")):
            raise ValueError(
                f"unsupported TENURE_RATE_LIMIT_URL {url.split('://')[0]!r}: "
                f"use redis://, rediss://, unix:// or memory://"
            )
        return url
    if settings.broker_url and settings.broker_url.startswith(REDIS_SCHEMES):
        return settings.broker_url
    return "memory://"


def make_storage(url: str) -> Storage:
    if url.startswith("memory://"):
        return MemoryStorage()
    scheme, _, rest = url.partition("://")
    scheme = {"unix": "redis+unix"}.get(scheme, scheme)
    return RedisStorage(
        f"async+{scheme}://{rest}",
        implementation="redispy",
        key_prefix=KEY_PREFIX,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
    )


def block_of(item: RateLimitItem) -> int:
    """How many hits a process takes from a shared window at once."""
    return max(1, min(MAX_BLOCK, item.amount // 50))


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


class Limiter:
    """The app's limits (built in its lifespan: the storage's connections belong to its loop)."""

    def __init__(self, settings: Settings) -> None:
        self.items = limit_items(settings)
        self.storage = make_storage(storage_url(settings))
        self.windows = MovingWindowRateLimiter(self.storage)
        self._down_until = 0.0
        self._blocked: dict[str, float] = {}  # address -> monotonic time its auth block ends
        self._taken: dict[tuple[str, str], tuple[int, float]] = {}  # hits left, until (monotonic)
        for name in NAMES:
            RATE_LIMITED.labels(name)  # every limit shows in /metrics, at 0 until it refuses

    async def close(self) -> None:
        if isinstance(self.storage, RedisStorage):
            await self.storage.bridge.get_connection().aclose()

    async def hit(self, name: str, who: str) -> None:
        """Counts one request against `name` for `who`; RateLimited (429) over the limit."""
        item = self.items[name]
        if item is None or time.monotonic() < self._down_until:
            return
        if name in BLOCKED_NAMES and self._spend_taken(name, who):
            return
        try:
            if await self._take(item, name, who):
                return
            reset = (await self.windows.get_window_stats(item, name, who)).reset_time
        except Exception as exc:  # redis errors, timeouts, refused connections: let it through
            self._down_until = time.monotonic() + PAUSE_S
            log.warning("rate_limit_storage_failed", limit=name, error=f"{type(exc).__name__}: {exc}")
            return
        raise self._refused(name, max(1, math.ceil(reset - time.time())))

    def _spend_taken(self, name: str, who: str) -> bool:
        left, until = self._taken.get((name, who), (0, 0.0))
        if left <= 0 or time.monotonic() >= until:
            self._taken.pop((name, who), None)
            return False
        self._taken[(name, who)] = (left - 1, until)
        return True

    async def _take(self, item: RateLimitItem, name: str, who: str) -> bool:
        """One hit (and, for BLOCKED_NAMES, a block to spend locally) from the window."""
        block = block_of(item) if name in BLOCKED_NAMES else 1
        if block > 1 and await self.windows.hit(item, name, who, cost=block):
            if len(self._taken) >= MAX_BLOCKED:
                self._taken.clear()
            left, until = self._taken.get((name, who), (0, math.inf))
            ends = time.monotonic() + item.get_expiry()
            self._taken[(name, who)] = (left + block - 1, min(until, ends))
            return True
        return await self.windows.hit(item, name, who)  # the window's last slots, one by one

    def check_blocked(self, address: str) -> None:
        """Before authenticating: RateLimited if this address is over the auth-failure limit
        (known to this process: no storage call on the way of a valid key)."""
        until = self._blocked.get(address)
        if until is None:
            return
        left = until - time.monotonic()
        if left <= 0:
            del self._blocked[address]
            return
        raise self._refused("auth_failures", max(1, math.ceil(left)))

    async def failed_auth(self, address: str) -> None:
        """After a wrong key or token: counts it; over the limit, blocks the address and raises."""
        try:
            await self.hit("auth_failures", address)
        except RateLimited as refused:
            if len(self._blocked) >= MAX_BLOCKED:
                now = time.monotonic()
                self._blocked = {a: t for a, t in self._blocked.items() if t > now}
            if len(self._blocked) < MAX_BLOCKED:
                self._blocked[address] = time.monotonic() + refused.retry_after
            raise

    def _refused(self, name: str, retry: int) -> RateLimited:
        RATE_LIMITED.labels(name).inc()
        limit = str(self.items[name]).replace(" per 1 ", " per ")
        return RateLimited(MESSAGES[name].format(limit=limit, retry=retry), retry)


def limiter_of(scope: Scope) -> Limiter:
    return scope["app"].state.limiter


class RouteLimits(ASGIMiddleware):
    """The per-address limits of routes open to anyone (sign-up, claim), by method and route."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        name = ROUTE_LIMITS.get((scope.get("method"), scope.get("path_template")))
        if name is not None:
            await limiter_of(scope).hit(name, client_address(scope))
        await next_app(scope, receive, send)
