"""Personal accounts. API keys are stored as SHA-256 digests, never in clear."""

from piccolo.columns import ForeignKey, Timestamptz, Varchar
from piccolo.table import Table


class Account(Table, tablename="accounts"):
    id = Varchar(length=40, primary_key=True)
    email = Varchar(length=320, unique=True, help_text="Lower-cased e-mail address.")
    name = Varchar(length=200)
    key_hash = Varchar(
        length=64, null=True, default=None, unique=True,
        help_text="SHA-256 hex digest of the API key; null until a key is issued (claim).",
    )
    created_at = Timestamptz()


class ClaimToken(Table, tablename="claim_tokens"):
    """One-time token handed to a released client's owner to obtain an API key."""

    token_hash = Varchar(length=64, primary_key=True)
    account = ForeignKey(references=Account)
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)


# --- queries -----------------------------------------------------------------

import hashlib  # noqa: E402
import secrets  # noqa: E402
from datetime import datetime  # noqa: E402

from tables.ids import new_id  # noqa: E402

API_KEY_PREFIX = "tnr_"


def digest(secret: str) -> str:
    """API keys and claim tokens are 256-bit random: a plain SHA-256 is the right hash."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str = API_KEY_PREFIX) -> str:
    return prefix + secrets.token_urlsafe(32)


async def create(email: str, name: str, now: datetime, *, with_key: bool = True) -> tuple[dict, str | None]:
    """Inserts an account; returns (row, api key shown once) or raises EmailTaken."""
    key = new_secret() if with_key else None
    row = {
        "id": new_id("acc"), "email": email.lower(), "name": name,
        "key_hash": digest(key) if key else None, "created_at": now,
    }
    inserted = await Account.insert(Account(**row)).on_conflict(
        target=Account.email, action="DO NOTHING"
    ).returning(Account.id)
    if not inserted:
        raise EmailTaken(email)
    return row, key


class EmailTaken(Exception):
    def __init__(self, email: str) -> None:
        super().__init__(email)
        self.email = email


async def by_key(api_key: str) -> dict | None:
    return await Account.select(Account.id, Account.email, Account.name).where(
        Account.key_hash == digest(api_key)
    ).first()


async def by_email(email: str) -> dict | None:
    return await Account.select(Account.id, Account.email, Account.name).where(
        Account.email == email.lower()
    ).first()


async def issue_claim_token(account_id: str, expires_at: datetime) -> str:
    token = new_secret("clm_")
    await ClaimToken.insert(
        ClaimToken(token_hash=digest(token), account=account_id, expires_at=expires_at)
    )
    return token


async def redeem_claim_token(token: str, now: datetime) -> str | None:
    """Marks the token used and gives its account a new API key; None if unusable."""
    used = await ClaimToken.update({ClaimToken.used_at: now}).where(
        (ClaimToken.token_hash == digest(token))
        & ClaimToken.used_at.is_null()
        & (ClaimToken.expires_at > now)
    ).returning(ClaimToken.account)
    if not used:
        return None
    key = new_secret()
    await Account.update({Account.key_hash: digest(key)}).where(Account.id == used[0]["account"])
    return key


async def rotate_key(account_id: str) -> str:
    key = new_secret()
    await Account.update({Account.key_hash: digest(key)}).where(Account.id == account_id)
    return key
