"""Who is calling and what they may do: API-key auth and organization access checks."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Request
from litestar.di import NamedDependency

from rules import permissions
from runtime.clock import clock
from tables import access_cache, api_keys, organizations, teams
from tables.accounts import digest
from tables.api_keys import Caller
from web.errors import NotFound, Unauthorized
from web.ops_auth import NO_OPS_TOKEN, session_cookie_valid
from web.ratelimit import client_address

# A handler's `account` parameter: the caller, injected by name (app dependency `account`).
Account = NamedDependency[Caller]


NO_KEY = "send your API key as 'Authorization: Bearer <api key>'"


def require_credentials(request: Request) -> None:
    """401 first, before any other check, when a route that needs a key gets no Authorization
    header at all: the request cannot succeed, whatever else is wrong with it."""
    if "authorization" in request.headers:
        return
    wanted = request.route_handler.parsed_fn_signature.parameters
    if "account" in wanted:
        raise Unauthorized(NO_KEY)
    if "ops" in wanted and not session_cookie_valid(request):
        raise Unauthorized(NO_OPS_TOKEN)


async def provide_account(request: Request) -> Caller:
    """The account behind `Authorization: Bearer <api key>`, or 401; 429 past a rate limit
    (wrong keys from the caller's address, or requests with this key), with the key's id and scope."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized(NO_KEY)
    limiter = request.app.state.limiter
    address = client_address(request.scope)
    limiter.check_blocked(address)
    account = await authenticated(key.strip())
    if account is None:
        await limiter.failed_auth(address)
        raise Unauthorized("this API key is not valid; create an account or use a current key")
    await limiter.hit("per_key", account.key_id)
    request.state.account_id = account.id
    request.state.key_id = account.key_id  # the activity record names the key (tables.activity)
    request.state.key_permissions = account.key_permissions  # kept on operations (web.accept)
    return account


async def authenticated(key: str) -> Caller | None:
    """The account behind `key`, from the access cache (tables/access_cache.py) or the database;
    its use is noted at most once a minute either way."""
    now = clock.now()
    entry = await access_cache.cache.load(("key", digest(key)), lambda: _key_entry(key))  # [account, last_used_at]
    if entry is None:
        return None
    account, last_used_at = entry
    if api_keys.use_is_stale(last_used_at, now):
        await api_keys.note_use(account.key_id, last_used_at, now)
        entry[1] = now
    return account


async def _key_entry(key: str) -> list | None:
    found = await api_keys.lookup(key)
    return None if found is None else list(found)


async def membership(account_id: str, org_id: str) -> tuple[organizations.OrganizationRecord, frozenset[str]] | None:
    """The organization and what the account's teams grant there, cached as keys are."""
    return await access_cache.cache.load(
        ("member", account_id, org_id),
        lambda: teams.membership(account_id, org_id, permissions.ALL_PERMISSIONS),
    )


async def optional_account(request: Request) -> Caller | None:
    """The caller's account when an Authorization header is sent (401 if it is not valid), else None."""
    if "authorization" not in request.headers:
        return None
    return await provide_account(request)


@dataclass(frozen=True)
class Access:
    org: organizations.OrganizationRecord
    granted: frozenset[str]

    def require(self, needed: str) -> None:
        permissions.require(self.granted, needed)


def key_allows_org(account: Caller, org_id: str) -> bool:
    """Whether the caller's API key may reach `org_id` at all (a key may be limited to some)."""
    return account.key_orgs is None or org_id in account.key_orgs


def narrowed(account: Caller, granted: frozenset[str]) -> frozenset[str]:
    """What the teams grant, narrowed to the key's permissions: a key never widens."""
    limit = account.key_permissions
    return granted if limit is None else granted & limit


async def access(account: Caller, org_id: str, needed: str | None = None) -> Access:
    """The caller's access to `org_id`; 404 if not a member (as if it did not exist) or if the
    caller's key is limited to other organizations, 403 if lacking `needed` (after the key's
    narrowing)."""
    found = None
    if key_allows_org(account, org_id):
        found = await membership(account.id, org_id)
    if found is None:  # unknown, or not yours: the same answer
        raise NotFound("organization", org_id)
    org, granted = found
    granted = narrowed(account, granted)
    result = Access(org=org, granted=granted)
    if needed:
        result.require(needed)
    return result
