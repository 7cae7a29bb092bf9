"""Organizations, their teams and their members."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta, Struct

from rules.price_list import CURRENCIES
from web.schemas.common import NAME_PATTERN, Email, Name


class OrganizationIn(Struct, forbid_unknown_fields=True):
    name: Name
    reseller: bool = False
    # One of TENURE_CURRENCIES (default EUR, USD, GBP): what it is billed in, for good.
    # Left out: the first of TENURE_CURRENCIES.
    # (A subset of the price lists, which the schema lists; others: 400 `unknown_currency`.)
    currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$", extra_json_schema={"enum": sorted(CURRENCIES)})] | None = None
    sandbox: bool = False  # play products on a test clock (POST .../test-clock)


class OrganizationOut(Struct):
    id: str
    name: str
    reseller: bool
    currency: str
    created_at: datetime
    sandbox: bool = False


class MemberOut(Struct):
    id: str
    email: str
    name: str


class TeamIn(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=100, pattern=NAME_PATTERN)]
    permissions: list[str] = msgspec.field(default_factory=list)


class TeamOut(Struct):
    id: str
    name: str
    permissions: list[str]
    owner: bool
    members: list[MemberOut]


class MemberIn(Struct, forbid_unknown_fields=True):
    email: Email
