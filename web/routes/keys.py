"""The caller's API keys: create (shown once), list, revoke."""

from __future__ import annotations

from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody

from rules import permissions
from rules.errors import PermissionDenied
from runtime.clock import clock
from tables import activity, api_keys, teams
from tables.activity import Actor
from tables.api_keys import ApiKeyRecord, Caller
from tables.engine import transaction
from web.access import Account
from web.errors import Invalid, NotFound
from web.schemas.accounts import ApiKeyIn, ApiKeyOut


def key_out(row: ApiKeyRecord, key: str | None = None) -> ApiKeyOut:
    return ApiKeyOut(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        organizations=row.organizations,
        permissions=row.permissions,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        api_key=key,
    )


def require_unrestricted(account: Caller) -> None:
    """Keys are managed with a key that is neither limited nor narrowed: a narrowed key
    could otherwise mint a wider one."""
    if account.key_orgs is not None or account.key_permissions is not None:
        raise PermissionDenied(
            "managing API keys needs a key without organization or permission limits; use your default key"
        )


async def record_key_change(account: Caller, kind: str, key: ApiKeyRecord) -> None:
    """A key is seen by every organization it reaches: those it is limited to, else all of the account's."""
    mine = sorted({row.organization_id for row in await teams.memberships_of(account.id)})
    reached = mine if key.organizations is None else [org for org in mine if org in key.organizations]
    now = clock.now()
    await activity.record_rows(
        [activity.row(org, kind, Actor.account(account), now, api_key_id=key.id, name=key.name) for org in reached]
    )


class KeyController(Controller):
    path = "/v1/me/keys"
    tags = ["accounts"]

    @post("/", status_code=201)
    async def create_key(self, account: Account, data: JSONBody[ApiKeyIn]) -> ApiKeyOut:
        """Creates a named key, optionally limited to some organizations and narrowed to some
        permissions (it never grants more than the account's teams); the key is shown once."""
        require_unrestricted(account)
        wanted = None if data.permissions is None else permissions.validate_permissions(data.permissions)
        orgs = None if data.organizations is None else sorted(set(data.organizations))
        if orgs is not None:
            mine = {row.organization_id for row in await teams.memberships_of(account.id)}
            unknown = [org for org in orgs if org not in mine]
            if unknown:
                raise Invalid(
                    "unknown_organization",
                    f"you are not a member of {', '.join(map(repr, unknown))}; "
                    "limit the key to organizations you belong to",
                )
        async with transaction():
            row, key = await api_keys.create(
                account.id, data.name.strip(), clock.now(), organizations=orgs, permissions=wanted
            )
            await record_key_change(account, "api_key.created", row)
        return key_out(row, key)

    @get("/")
    async def list_keys(self, account: Account) -> list[ApiKeyOut]:
        """Every key of the account: its name, first characters and scope, never the key."""
        require_unrestricted(account)
        return [key_out(row) for row in await api_keys.of(account.id)]

    @delete("/{key_id:str}", status_code=204)
    async def revoke_key(self, account: Account, key_id: FromPath[str]) -> None:
        """Revokes the key: requests made with it are refused (401) at once by the web process that
        revoked it, and by every other one within TENURE_AUTH_CACHE_SECONDS (2 s by default)."""
        require_unrestricted(account)
        async with transaction():
            revoked = next((row for row in await api_keys.of(account.id) if row.id == key_id), None)
            if revoked is None or not await api_keys.revoke(account.id, key_id):
                raise NotFound("API key", key_id)
            await record_key_change(account, "api_key.revoked", revoked)
