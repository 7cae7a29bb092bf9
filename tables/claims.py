"""Claims: a released client's organization is held by a one-time token until someone presents it.

The organization a release makes has an Owner team with no member; the claim is its pending
owner. Whoever presents the token (with an account of any e-mail, or creating one) joins the
Owner team and the claim ends. Tokens are stored as SHA-256 digests; the clear token is kept
only until the first `client:manage` reader of the release operation has seen it once.
"""

from datetime import datetime

import msgspec
from piccolo.columns import ForeignKey, Timestamptz, Varchar
from piccolo.table import Table

from runtime.ids import new_id
from tables.accounts import Account, digest, new_secret
from tables.clients import Client
from tables.organizations import Organization


class Claim(Table, tablename="claims"):
    id = Varchar(length=40, primary_key=True)
    organization = ForeignKey(
        references=Organization, index=True, help_text="The released organization this claim holds."
    )
    reseller = ForeignKey(references=Organization, help_text="The reseller that released the client.")
    client = ForeignKey(references=Client, index=True)
    operation_id = Varchar(
        length=40,
        null=True,
        default=None,
        index=True,
        help_text="The release operation that issued it; null when reissued.",
    )
    owner_email = Varchar(length=320, help_text="The e-mail the reseller gave; a new account's default.")
    token_hash = Varchar(length=64, unique=True, help_text="SHA-256 hex digest of the token.")
    reveal = Varchar(
        length=80,
        null=True,
        default=None,
        help_text="The clear token until its first reading by the reseller, then null.",
    )
    expires_at = Timestamptz()
    created_at = Timestamptz()
    claimed_at = Timestamptz(null=True, default=None)
    claimed_by = ForeignKey(references=Account, null=True, default=None)
    voided_at = Timestamptz(null=True, default=None, help_text="Set when a reissue replaced it.")


class ClaimRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A claim as the other layers read it, converted from a row (a `name=` is the column read)."""

    id: str
    organization_id: str = msgspec.field(name="organization")  # the released organization it holds
    reseller_id: str = msgspec.field(name="reseller")  # the reseller that released the client
    client_id: str = msgspec.field(name="client")
    owner_email: str  # the e-mail the reseller gave: a new account's default
    expires_at: datetime
    claimed_at: datetime | None


# --- queries -----------------------------------------------------------------


TOKEN_PREFIX = "clm_"
_COLUMNS = (
    Claim.id,
    Claim.organization,
    Claim.reseller,
    Claim.client,
    Claim.owner_email,
    Claim.expires_at,
    Claim.claimed_at,
)


def _claim(row: dict) -> ClaimRecord:
    return msgspec.convert(row, ClaimRecord)


async def issue(
    org_id: str,
    reseller_id: str,
    client_id: str,
    owner_email: str,
    now: datetime,
    expires_at: datetime,
    *,
    operation_id: str | None = None,
) -> tuple[ClaimRecord, str]:
    """A new claim (voiding any other unclaimed one of the organization); answers (claim, token)."""
    await Claim.update({Claim.voided_at: now, Claim.reveal: None}).where(
        (Claim.organization == org_id) & Claim.claimed_at.is_null() & Claim.voided_at.is_null()
    )
    token = new_secret(TOKEN_PREFIX)
    row = {
        "id": new_id("clm"),
        "organization": org_id,
        "reseller": reseller_id,
        "client": client_id,
        "operation_id": operation_id,
        "owner_email": owner_email.lower(),
        "token_hash": digest(token),
        "reveal": token if operation_id else None,
        "expires_at": expires_at,
        "created_at": now,
        "claimed_at": None,
        "claimed_by": None,
        "voided_at": None,
    }
    await Claim.insert(Claim(**row))
    return _claim(row), token


async def reveal_once(operation_id: str) -> str | None:
    """The clear token of the release `operation_id`, the first time only (of concurrent readers,
    the one whose UPDATE clears it gets it)."""
    row = (
        await Claim.select(Claim.id, Claim.reveal)
        .where((Claim.operation_id == operation_id) & Claim.reveal.is_not_null())
        .first()
    )
    if row is None:
        return None
    taken = (
        await Claim.update({Claim.reveal: None})
        .where((Claim.id == row["id"]) & Claim.reveal.is_not_null())
        .returning(Claim.id)
    )
    return row["reveal"] if taken else None


async def redeem(token: str, account_id: str, now: datetime) -> ClaimRecord | None:
    """Ends the claim the token names, for `account_id`; None if unknown, used, voided or expired."""
    used = (
        await Claim.update({Claim.claimed_at: now, Claim.claimed_by: account_id, Claim.reveal: None})
        .where(
            (Claim.token_hash == digest(token))
            & Claim.claimed_at.is_null()
            & Claim.voided_at.is_null()
            & (Claim.expires_at > now)
        )
        .returning(*_COLUMNS)
    )
    return _claim(used[0]) if used else None


async def peek(token: str, now: datetime) -> ClaimRecord | None:
    """The usable claim the token names, without using it (for defaults such as the e-mail)."""
    row = (
        await Claim.select(*_COLUMNS)
        .where(
            (Claim.token_hash == digest(token))
            & Claim.claimed_at.is_null()
            & Claim.voided_at.is_null()
            & (Claim.expires_at > now)
        )
        .first()
    )
    return None if row is None else _claim(row)


async def latest_of_clients(client_ids: list[str]) -> dict[str, ClaimRecord]:
    """Each client's newest claim that was not voided (the one that counts)."""
    if not client_ids:
        return {}
    rows = (
        await Claim.select(*_COLUMNS)
        .where(Claim.client.is_in(client_ids) & Claim.voided_at.is_null())
        .order_by(Claim.created_at)
    )
    return {r["client"]: _claim(r) for r in rows}


async def holds(org_id: str) -> bool:
    """Is the organization held by an unclaimed claim (pending, or expired and reissuable)?"""
    return bool(
        await Claim.exists().where(
            (Claim.organization == org_id) & Claim.claimed_at.is_null() & Claim.voided_at.is_null()
        )
    )


async def claimed(org_id: str) -> bool:
    return bool(await Claim.exists().where((Claim.organization == org_id) & Claim.claimed_at.is_not_null()))
