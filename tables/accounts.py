"""Personal accounts. Their API keys live in `api_keys` (tables.api_keys), as SHA-256 digests."""

import hashlib
import secrets
from datetime import datetime

import msgspec
from piccolo.columns import Timestamptz, Varchar
from piccolo.table import Table

from runtime.ids import new_id
from tables.engine import insert_unless_taken


class Account(Table, tablename="accounts"):
    id = Varchar(length=40, primary_key=True)
    email = Varchar(length=320, unique=True, help_text="Lower-cased e-mail address.")
    name = Varchar(length=200)
    key_hash = Varchar(
        length=64,
        null=True,
        default=None,
        unique=True,
        help_text="Unused: keys live in api_keys; `tenure migrate` moves any left here and empties it.",
    )
    created_at = Timestamptz()


class AccountRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An account as the other layers read it (never its key)."""

    id: str
    email: str  # lower-cased
    name: str


# --- queries -----------------------------------------------------------------


API_KEY_PREFIX = "tnr_"


def digest(secret: str) -> str:
    """API keys and claim tokens are 256-bit random: a plain SHA-256 is the right hash."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str = API_KEY_PREFIX) -> str:
    return prefix + secrets.token_urlsafe(32)


async def create(email: str, name: str, now: datetime) -> tuple[AccountRecord, str]:
    """Inserts an account with its "default" API key; returns (account, key shown once) or raises EmailTaken."""
    from tables import api_keys

    account = AccountRecord(id=new_id("acc"), email=email.lower(), name=name)
    row = Account(id=account.id, email=account.email, name=account.name, key_hash=None, created_at=now)
    inserted = await insert_unless_taken(row, Account.email)
    if not inserted:
        raise EmailTaken(email)
    _, key = await api_keys.create(account.id, api_keys.DEFAULT_NAME, now)
    return account, key


class EmailTaken(Exception):
    def __init__(self, email: str) -> None:
        super().__init__(email)
        self.email = email


async def by_email(email: str) -> AccountRecord | None:
    row = await Account.select(Account.id, Account.email, Account.name).where(Account.email == email.lower()).first()
    return None if row is None else AccountRecord(**row)


async def rotate_key(account_id: str, now: datetime) -> str:
    """Replaces every key of the account by a new "default" one (the demo's sign-in)."""
    from tables import access_cache, api_keys

    await api_keys.ApiKey.delete().where(api_keys.ApiKey.account == account_id)
    access_cache.changed()
    _, key = await api_keys.create(account_id, api_keys.DEFAULT_NAME, now)
    return key


async def reachable() -> None:
    """One trivial read: raises when the database cannot be reached (GET /ready)."""
    await Account.select(Account.id).limit(1)
