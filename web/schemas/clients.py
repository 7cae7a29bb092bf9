"""A reseller's clients, and the claim of a released one."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec
from msgspec import Struct

from web.schemas.common import Email, Ident, Name


class ClaimIssued(Struct):
    claim_token: str  # shown once
    expires_at: datetime


class ClaimStateOut(Struct):
    status: Literal["pending", "expired", "claimed"]
    expires_at: datetime
    claimed_at: datetime | None


class ClientIn(Struct, forbid_unknown_fields=True):
    name: Name
    email: Email
    external_ref: Ident | None = None


class ClientOut(Struct):
    id: str
    reseller_id: str
    name: str
    email: str
    external_ref: str | None
    status: str
    released_to: str | None
    product_count: int
    created_at: datetime
    claim: ClaimStateOut | None = None  # a released client's organization: awaiting its claim, or claimed


class ClientPatch(Struct, forbid_unknown_fields=True):
    """Only the fields sent change; `external_ref: null` removes the reference."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    email: Email | msgspec.UnsetType = msgspec.UNSET
    external_ref: Ident | None | msgspec.UnsetType = msgspec.UNSET


class ClientPage(Struct, omit_defaults=True):
    items: list[ClientOut]
    next_cursor: str | None
    total: int | None = None
