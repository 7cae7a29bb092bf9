"""Claims on a released client's organization: their states and what may be done with them.

A release never hands the new organization to an account directly (e-mails are not verified):
the organization is held by a one-time claim until its token is presented.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import Enum

from rules.errors import AlreadyClaimed, ClientNotReleased

DEFAULT_CLAIM_DAYS = 30


class ClaimStatus(str, Enum):
    PENDING = "pending"  # a token is out and still usable
    EXPIRED = "expired"  # unclaimed, its token too old: the reseller reissues one
    CLAIMED = "claimed"  # an account presented the token and owns the organization


def expires_at(now: datetime, days: int = DEFAULT_CLAIM_DAYS) -> datetime:
    return now + timedelta(days=days)


def status(claimed_at: datetime | None, expires: datetime, now: datetime) -> ClaimStatus:
    if claimed_at is not None:
        return ClaimStatus.CLAIMED
    return ClaimStatus.PENDING if now < expires else ClaimStatus.EXPIRED


def check_reissue(client_status: str, claim: ClaimStatus | None) -> None:
    """A new token only for a released client whose organization nobody has claimed yet."""
    if client_status != "released" or claim is None:
        raise ClientNotReleased(
            "this client has not been released; release it first (POST .../release), which issues its claim token"
        )
    if claim is ClaimStatus.CLAIMED:
        raise AlreadyClaimed("the released organization was already claimed; its owners manage it now")
