"""Personal accounts. Their API keys live in `api_keys` (tables.api_keys), as SHA-256 digests."""

import hashlib
import secrets
from datetime import datetime

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


# --- queries -----------------------------------------------------------------


API_KEY_PREFIX = "tnr_"


def digest(secret: str) -> str:
    """API keys and claim tokens are 256-bit random: a plain SHA-256 is the right hash."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str = API_KEY_PREFIX) -> str:
    return prefix + secrets.token_urlsafe(32)


async def create(email: str, name: str, now: datetime) -> tuple[dict, str]:
    """Inserts an account with its "default" API key; returns (row, key shown once) or raises EmailTaken."""
    from tables import api_keys

    row = {"id": new_id("acc"), "email": email.lower(), "name": name, "key_hash": None, "created_at": now}
    inserted = await insert_unless_taken(Account(**row), Account.email)
    if not inserted:
        raise EmailTaken(email)
    _, key = await api_keys.create(row["id"], api_keys.DEFAULT_NAME, now)
    return row, key


class EmailTaken(Exception):
    def __init__(self, email: str) -> None:
        super().__init__(email)
        self.email = email


async def by_email(email: str) -> dict | None:
    return await Account.select(Account.id, Account.email, Account.name).where(Account.email == email.lower()).first()


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
