"""Teams with their permissions, and memberships: who belongs to which team of an organization,
and the permissions an account holds in it."""

import functools
from datetime import datetime
from types import SimpleNamespace

import msgspec
from piccolo.columns import Array, Boolean, ForeignKey, Timestamptz, Varchar
from piccolo.table import Table

from runtime.ids import new_id
from tables import access_cache
from tables.accounts import Account, AccountRecord
from tables.engine import insert_unless_taken
from tables.organizations import Organization, OrganizationRecord


class Team(Table, tablename="teams"):
    id = Varchar(length=40, primary_key=True)
    organization = ForeignKey(references=Organization, index=True)
    name = Varchar(length=100)
    name_key = Varchar(length=160, unique=True, help_text="organization id + lower-cased name")
    permissions = Array(
        base_column=Varchar(length=60),
        default=list,
        help_text="Permission names its members get (rules.permissions); the Owner team has them all.",
    )
    is_owner = Boolean(default=False, help_text="The Owner team: all permissions, never deleted.")
    created_at = Timestamptz()


class Membership(Table, tablename="memberships"):
    id = Varchar(length=40, primary_key=True)
    team = ForeignKey(references=Team, index=True)
    account = ForeignKey(references=Account, index=True)
    organization = ForeignKey(references=Organization, index=True)
    member_key = Varchar(length=100, unique=True, help_text="team id + account id")
    created_at = Timestamptz()


class TeamRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    organization_id: str
    name: str
    permissions: list[str]  # sorted permission names (rules.permissions)
    is_owner: bool  # the Owner team: all permissions, never deleted
    created_at: datetime
    members: tuple[AccountRecord, ...] = ()  # filled by `teams_with_members` only


class MembershipRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One (organization, team) an account belongs to, converted from a row of joined columns:
    each `name=` is the join's column name, which stays here."""

    organization_id: str = msgspec.field(name="organization.id")
    organization_name: str = msgspec.field(name="organization.name")
    organization_is_reseller: bool = msgspec.field(name="organization.is_reseller")
    team_id: str = msgspec.field(name="team.id")
    team_name: str = msgspec.field(name="team.name")
    team_permissions: list[str] = msgspec.field(name="team.permissions")
    team_is_owner: bool = msgspec.field(name="team.is_owner")


class TeamNameTaken(Exception):
    pass


class AlreadyMember(Exception):
    pass


@functools.cache
def _joined() -> SimpleNamespace:
    """Columns reached through foreign keys, built once: Piccolo rebuilds a join path on every
    attribute access, which showed as a quarter of the CPU of an authenticated request."""
    return SimpleNamespace(
        team_permissions=Membership.team.permissions,
        team_is_owner=Membership.team.is_owner,
        team_id=Membership.team.id,
        team_name=Membership.team.name,
        org_id=Membership.organization.id,
        org_name=Membership.organization.name,
        org_is_reseller=Membership.organization.is_reseller,
        org_currency=Membership.organization.currency,
        org_created_at=Membership.organization.created_at,
        org_sandbox=Membership.organization.sandbox,
        account_id=Membership.account.id,
        account_email=Membership.account.email,
        account_name=Membership.account.name,
    )


def _perm_set(names: list[str]) -> frozenset[str]:
    return frozenset(names)


async def create_team(
    org_id: str, name: str, permissions: frozenset[str], now: datetime, *, is_owner: bool = False
) -> TeamRecord:
    team = TeamRecord(
        id=new_id("team"),
        organization_id=org_id,
        name=name,
        permissions=sorted(permissions),
        is_owner=is_owner,
        created_at=now,
    )
    row = Team(
        id=team.id,
        organization=org_id,
        name=name,
        name_key=f"{org_id}:{name.lower()}",
        permissions=team.permissions,
        is_owner=is_owner,
        created_at=now,
    )
    inserted = await insert_unless_taken(row, Team.name_key)
    access_cache.changed()
    if not inserted:
        raise TeamNameTaken(name)
    return team


async def add_member(org_id: str, team_id: str, account_id: str, now: datetime) -> None:
    inserted = await insert_unless_taken(
        Membership(
            id=new_id("mem"),
            team=team_id,
            account=account_id,
            organization=org_id,
            member_key=f"{team_id}:{account_id}",
            created_at=now,
        ),
        Membership.member_key,
    )
    access_cache.changed()  # another team may widen what the member holds
    if not inserted:
        raise AlreadyMember(account_id)


async def remove_member(team_id: str, account_id: str) -> bool:
    removed = (
        await Membership.delete().where(Membership.member_key == f"{team_id}:{account_id}").returning(Membership.id)
    )
    access_cache.changed()
    return bool(removed)


async def leave(org_id: str, account_id: str) -> None:
    await Membership.delete().where((Membership.organization == org_id) & (Membership.account == account_id))
    access_cache.changed()


def _granted(rows: list[dict], all_permissions: frozenset[str]) -> frozenset[str]:
    granted: set[str] = set()
    for row in rows:
        if row["team.is_owner"]:
            return all_permissions
        granted |= _perm_set(row["team.permissions"])
    return frozenset(granted)


async def membership(
    account_id: str, org_id: str, all_permissions: frozenset[str]
) -> tuple[OrganizationRecord, frozenset[str]] | None:
    """The organization and the account's permissions in it, in one query; None if not a member."""
    joined = _joined()
    rows = await Membership.select(
        joined.org_id,
        joined.org_name,
        joined.org_is_reseller,
        joined.org_currency,
        joined.org_created_at,
        joined.org_sandbox,
        joined.team_permissions,
        joined.team_is_owner,
    ).where((Membership.account == account_id) & (Membership.organization == org_id))
    if not rows:
        return None
    first = rows[0]
    org = OrganizationRecord(
        id=first["organization.id"],
        name=first["organization.name"],
        is_reseller=first["organization.is_reseller"],
        currency=first["organization.currency"],
        created_at=first["organization.created_at"],
        sandbox=first["organization.sandbox"],
    )
    return org, _granted(rows, all_permissions)


async def permissions_of(account_id: str, org_id: str, all_permissions: frozenset[str]) -> frozenset[str] | None:
    """Union of the account's team permissions in the organization; None if not a member."""
    joined = _joined()
    rows = await Membership.select(joined.team_permissions, joined.team_is_owner).where(
        (Membership.account == account_id) & (Membership.organization == org_id)
    )
    if not rows:
        return None
    return _granted(rows, all_permissions)


async def owner_ids(org_id: str) -> frozenset[str]:
    rows = await Membership.select(Membership.account).where(
        (Membership.organization == org_id) & (_joined().team_is_owner == True)  # noqa: E712
    )
    return frozenset(r["account"] for r in rows)


async def owner_team_id(org_id: str) -> str | None:
    row = await Team.select(Team.id).where((Team.organization == org_id) & (Team.is_owner == True)).first()  # noqa: E712
    return row["id"] if row else None


_TEAM_COLUMNS = (Team.id, Team.organization, Team.name, Team.permissions, Team.is_owner, Team.created_at)


def _team(row: dict, members: tuple[AccountRecord, ...] = ()) -> TeamRecord:
    return TeamRecord(
        id=row["id"],
        organization_id=row["organization"],
        name=row["name"],
        permissions=sorted(_perm_set(row["permissions"])),
        is_owner=row["is_owner"],
        created_at=row["created_at"],
        members=members,
    )


async def get_team(org_id: str, team_id: str) -> TeamRecord | None:
    row = await Team.select(*_TEAM_COLUMNS).where((Team.id == team_id) & (Team.organization == org_id)).first()
    return None if row is None else _team(row)


async def teams_with_members(org_id: str) -> list[TeamRecord]:
    teams = await Team.select(*_TEAM_COLUMNS).where(Team.organization == org_id).order_by(Team.created_at)
    members = (
        await Membership.select(Membership.team, _joined().account_id, _joined().account_email, _joined().account_name)
        .where(Membership.organization == org_id)
        .order_by(Membership.created_at)
    )
    by_team: dict[str, list[AccountRecord]] = {t["id"]: [] for t in teams}
    for m in members:
        by_team[m["team"]].append(AccountRecord(id=m["account.id"], email=m["account.email"], name=m["account.name"]))
    return [_team(t, tuple(by_team[t["id"]])) for t in teams]


async def memberships_of(account_id: str) -> list[MembershipRecord]:
    """Every (organization, team) the account belongs to."""
    rows = (
        await Membership.select(
            _joined().org_id,
            _joined().org_name,
            _joined().org_is_reseller,
            _joined().team_id,
            _joined().team_name,
            _joined().team_permissions,
            _joined().team_is_owner,
        )
        .where(Membership.account == account_id)
        .order_by(Membership.created_at)
    )
    return [msgspec.convert(r, MembershipRecord) for r in rows]
