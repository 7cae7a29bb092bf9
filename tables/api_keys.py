"""API keys: several named keys per account, each stored as a SHA-256 digest, optionally
limited to some organizations and narrowed to some permissions.

A key's scope only narrows what its account's teams grant: `organizations` (None: every
organization the account belongs to) and `permissions` (None: whatever the teams grant;
else the intersection of the two). `last_used_at` is written at most once a minute per key.
"""

import functools
from collections.abc import Iterable
from datetime import datetime, timedelta
from types import SimpleNamespace

import msgspec
from piccolo.columns import Array, ForeignKey, Timestamptz, Varchar
from piccolo.table import Table

from runtime.ids import new_id
from tables import access_cache
from tables.accounts import Account, AccountRecord, digest, new_secret


class ApiKey(Table, tablename="api_keys"):
    id = Varchar(length=40, primary_key=True)
    account = ForeignKey(references=Account, index=True)
    name = Varchar(length=100)
    key_hash = Varchar(length=64, unique=True, help_text="SHA-256 hex digest of the key.")
    prefix = Varchar(length=20, help_text="The key's first characters, to recognise it in a list.")
    organizations = Array(
        base_column=Varchar(length=40),
        null=True,
        default=None,
        help_text="The organization ids it may act in; null: all of its account's.",
    )
    permissions = Array(
        base_column=Varchar(length=60),
        null=True,
        default=None,
        help_text="The permission names it narrows its account's to; null: no narrowing.",
    )
    created_at = Timestamptz()
    last_used_at = Timestamptz(null=True, default=None)


class ApiKeyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What a key's owner may see of it: never its digest."""

    id: str
    name: str
    prefix: str  # its first characters, to recognise it in a list
    organizations: list[str] | None  # sorted; None: every organization of its account
    permissions: list[str] | None  # sorted; None: whatever its account's teams grant
    created_at: datetime
    last_used_at: datetime | None


class Caller(AccountRecord, frozen=True, kw_only=True):
    """The account behind an API key, with that key's id and scope (None where it does not narrow)."""

    key_id: str
    key_orgs: frozenset[str] | None  # the organizations the key may reach
    key_permissions: frozenset[str] | None  # what the key narrows its account's permissions to


# --- queries -----------------------------------------------------------------


DEFAULT_NAME = "default"
PREFIX_LENGTH = 12  # "tnr_" and 8 random characters: enough to tell keys apart, useless to guess
CARRIED_PREFIX = "tnr_"  # keys carried over from accounts.key_hash: only their digest is known
LAST_USED_EVERY = timedelta(seconds=60)


@functools.cache
def _joined() -> SimpleNamespace:
    return SimpleNamespace(email=ApiKey.account.email, name=ApiKey.account.name)


def _names(values: Iterable[str] | None) -> list[str] | None:
    return None if values is None else sorted(set(values))


def _scope(names: list[str] | None) -> frozenset[str] | None:
    return None if names is None else frozenset(names)


def public(row: dict) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        organizations=_names(row["organizations"]),
        permissions=_names(row["permissions"]),
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
    )


async def create(
    account_id: str,
    name: str,
    now: datetime,
    *,
    organizations: Iterable[str] | None = None,
    permissions: Iterable[str] | None = None,
) -> tuple[ApiKeyRecord, str]:
    """Stores a new key; answers (what its owner may see of it, the key shown once)."""
    key = new_secret()
    made = ApiKeyRecord(
        id=new_id("key"),
        name=name,
        prefix=key[:PREFIX_LENGTH],
        organizations=_names(organizations),
        permissions=_names(permissions),
        created_at=now,
        last_used_at=None,
    )
    await ApiKey.insert(
        ApiKey(
            id=made.id,
            account=account_id,
            name=name,
            key_hash=digest(key),
            prefix=made.prefix,
            organizations=made.organizations,
            permissions=made.permissions,
            created_at=now,
            last_used_at=None,
        )
    )
    return made, key


async def of(account_id: str) -> list[ApiKeyRecord]:
    rows = await ApiKey.select().where(ApiKey.account == account_id).order_by(ApiKey.created_at)
    return [public(r) for r in rows]


async def revoke(account_id: str, key_id: str) -> bool:
    """Deletes the key (it stops working at once); False if the account has no such key."""
    gone = await ApiKey.delete().where((ApiKey.id == key_id) & (ApiKey.account == account_id)).returning(ApiKey.id)
    access_cache.changed()  # here at once; in other processes within the cache's ttl
    return bool(gone)


async def authenticate(api_key: str, now: datetime) -> Caller | None:
    """The account behind `api_key`, with the key's id and scope; None for an unknown key.
    Notes the use at most once a minute (a conditional UPDATE, so racing requests write once)."""
    found = await lookup(api_key)
    if found is None:
        return None
    account, last_used_at = found
    await note_use(account.key_id, last_used_at, now)
    return account


async def lookup(api_key: str) -> tuple[Caller, datetime | None] | None:
    """As `authenticate`, without noting the use: the account and the key's `last_used_at`."""
    joined = _joined()
    row = (
        await ApiKey.select(
            ApiKey.id,
            ApiKey.account,
            joined.email,
            joined.name,
            ApiKey.organizations,
            ApiKey.permissions,
            ApiKey.last_used_at,
        )
        .where(ApiKey.key_hash == digest(api_key))
        .first()
    )
    if row is None:
        return None
    return (
        Caller(
            id=row["account"],
            email=row["account.email"],
            name=row["account.name"],
            key_id=row["id"],
            key_orgs=_scope(row["organizations"]),
            key_permissions=_scope(row["permissions"]),
        ),
        row["last_used_at"],
    )


def use_is_stale(last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or last_used_at < now - LAST_USED_EVERY


async def note_use(key_id: str, last_used_at: datetime | None, now: datetime) -> None:
    """Sets `last_used_at` to now if it was last set over a minute ago (once, however many race)."""
    if use_is_stale(last_used_at, now):
        stale = now - LAST_USED_EVERY
        await ApiKey.update({ApiKey.last_used_at: now}).where(
            (ApiKey.id == key_id) & (ApiKey.last_used_at.is_null() | (ApiKey.last_used_at < stale))
        )


async def carry_over_account_keys(now: datetime) -> int:
    """Moves each key still in `accounts.key_hash` (accounts made before `api_keys`) into
    `api_keys` as that account's "default" key, and empties the column, so a revoked key is
    never carried over again. Run by `tenure migrate`; answers how many keys moved."""
    rows = await Account.select(Account.id, Account.key_hash, Account.created_at).where(Account.key_hash.is_not_null())
    for row in rows:
        await ApiKey.insert(
            ApiKey(
                id=new_id("key"),
                account=row["id"],
                name=DEFAULT_NAME,
                key_hash=row["key_hash"],
                prefix=CARRIED_PREFIX,
                organizations=None,
                permissions=None,
                created_at=row["created_at"] or now,
                last_used_at=None,
            )
        ).on_conflict(target=ApiKey.key_hash, action="DO NOTHING")
        await Account.update({Account.key_hash: None}).where(Account.id == row["id"])
    return len(rows)
