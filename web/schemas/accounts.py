"""Accounts: signing up, claiming a released organization, `me`, and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from msgspec import Meta, Struct

from web.schemas.common import NAME_PATTERN, Email, Ident, Name


class AccountIn(Struct, forbid_unknown_fields=True):
    email: Email
    name: Name


class AccountCreated(Struct):
    id: str
    email: str
    name: str
    api_key: str


class ClaimIn(Struct, forbid_unknown_fields=True):
    claim_token: Annotated[str, Meta(min_length=1, max_length=200)]
    # Only without an API key, for the account to create: defaults to the release's owner_email.
    email: Email | None = None
    name: Name | None = None


class ClaimedOut(Struct):
    account_id: str
    organization_id: str
    api_key: str | None  # only for an account created by this claim; shown once


class TeamRef(Struct):
    id: str
    name: str
    permissions: list[str]
    owner: bool


class MyOrganization(Struct):
    id: str
    name: str
    reseller: bool
    teams: list[TeamRef]


class MeOut(Struct):
    id: str
    email: str
    name: str
    organizations: list[MyOrganization]


KeyName = Annotated[str, Meta(min_length=1, max_length=100, pattern=NAME_PATTERN)]


class ApiKeyIn(Struct, forbid_unknown_fields=True):
    name: KeyName
    # Omitted: every organization the account belongs to / whatever its teams grant.
    organizations: Annotated[list[Ident], Meta(max_length=100)] | None = None
    permissions: Annotated[list[Ident], Meta(max_length=50)] | None = None


class ApiKeyOut(Struct):
    id: str
    name: str
    prefix: str  # the key's first characters, to recognise it
    organizations: list[str] | None  # null: not limited
    permissions: list[str] | None  # null: not narrowed
    created_at: datetime
    last_used_at: datetime | None
    api_key: str | None = None  # only in the answer that creates the key
