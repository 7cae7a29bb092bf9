"""Organizations (plain or reseller): created with their Owner team, found, locked. Teams and
memberships: tables.teams."""

from datetime import datetime

import msgspec
from piccolo.columns import Boolean, Timestamptz, Varchar
from piccolo.table import Table

from rules import permissions as permission_rules
from runtime.ids import new_id
from tables import ledger, test_clocks
from tables.engine import locked
from tables.statements import Statement, fetch


class Organization(Table, tablename="organizations"):
    id = Varchar(length=40, primary_key=True)
    name = Varchar(length=200)
    is_reseller = Boolean(default=False, help_text="Sells to clients of its own (tables.clients).")
    currency = Varchar(length=3, default="EUR", help_text="ISO 4217 code of its price list and its ledger.")
    created_at = Timestamptz()
    sandbox = Boolean(
        default=False,
        help_text="Play products on a test clock (tables.test_clocks); never swept by the production scheduler.",
    )


class OrganizationRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    is_reseller: bool
    currency: str  # ISO 4217: its price list's and its ledger's
    created_at: datetime
    sandbox: bool  # play products on a test clock of its own


# --- queries -----------------------------------------------------------------


async def create(
    name: str, is_reseller: bool, currency: str, now: datetime, *, sandbox: bool = False
) -> OrganizationRecord:
    org = OrganizationRecord(
        id=new_id("org"), name=name, is_reseller=is_reseller, currency=currency, created_at=now, sandbox=sandbox
    )
    await Organization.insert(Organization(**msgspec.structs.asdict(org)))
    return org


async def open_with_owners(
    name: str,
    is_reseller: bool,
    currency: str,
    now: datetime,
    *,
    sandbox: bool = False,
    owner_account_id: str | None = None,
    credit_limit: int = 0,
) -> OrganizationRecord:
    """A new organization with everything it starts with: its Owner team (`owner_account_id` its
    first member, when given), its ledger account and, for a sandbox, its test clock. Call inside
    a transaction."""
    from tables.teams import add_member, create_team  # teams name organizations

    org = await create(name, is_reseller, currency, now, sandbox=sandbox)
    if sandbox:
        await test_clocks.create(org.id, now)
    owners = await create_team(
        org.id, permission_rules.OWNER_TEAM_NAME, permission_rules.ALL_PERMISSIONS, now, is_owner=True
    )
    if owner_account_id is not None:
        await add_member(org.id, owners.id, owner_account_id, now)
    await ledger.open_account(org.id, currency, now, credit_limit=credit_limit)
    return org


_FIND = Statement("SELECT * FROM organizations WHERE id = {}")  # once per batch and organization


async def find(org_id: str) -> OrganizationRecord | None:
    rows = await fetch(_FIND, org_id)
    return msgspec.convert(rows[0], OrganizationRecord) if rows else None


async def lock(org_id: str) -> None:
    """Serialises membership changes of one organization (SQLite: the IMMEDIATE transaction does)."""
    await locked(Organization.select(Organization.id).where(Organization.id == org_id))
