"""Organizations, their teams and members."""

from __future__ import annotations

from litestar import Controller, Request, delete, get, post
from litestar.params import FromPath, JSONBody

from rules import membership, permissions
from rules.billing import SANDBOX_CREDIT_LIMIT
from rules.errors import UnknownCurrency
from runtime.clock import clock
from tables import accounts, organizations, teams
from tables.activity import Actor, record
from tables.api_keys import Caller
from tables.engine import transaction
from tables.organizations import OrganizationRecord
from tables.teams import TeamRecord
from web.access import Access, Account, access
from web.errors import Conflict, Invalid, NotFound
from web.schemas.organizations import MemberIn, MemberOut, OrganizationIn, OrganizationOut, TeamIn, TeamOut


def _org_out(row: OrganizationRecord) -> OrganizationOut:
    return OrganizationOut(
        id=row.id,
        name=row.name,
        reseller=row.is_reseller,
        currency=row.currency,
        created_at=row.created_at,
        sandbox=row.sandbox,
    )


def _team_out(row: TeamRecord) -> TeamOut:
    return TeamOut(
        id=row.id,
        name=row.name,
        permissions=row.permissions,
        owner=row.is_owner,
        members=[MemberOut(id=m.id, email=m.email, name=m.name) for m in row.members],
    )


async def check_team_change(found: Access, account: Caller, team: TeamRecord) -> None:
    """Changing a team's members hands out its permissions: only what the caller holds,
    and the Owner team only by owners."""
    membership.check_grant(found.granted, frozenset(team.permissions))
    caller_is_owner = account.id in await teams.owner_ids(found.org.id)
    membership.check_owner_team_change(caller_is_owner, team.is_owner)


class OrganizationController(Controller):
    path = "/v1/organizations"
    tags = ["organizations"]

    @post("/", status_code=201)
    async def create_organization(
        self, request: Request, account: Account, data: JSONBody[OrganizationIn]
    ) -> OrganizationOut:
        """Creates an organization billed in `currency` (one of TENURE_CURRENCIES: it cannot change
        later); its creator is the first member of its Owner team. A sandbox (`sandbox: true`) holds
        play products on a test clock of its own, starting now, which moves only when asked
        (POST .../test-clock); its names never clash with production ones."""
        accepted = request.app.state.settings.accepted_currencies
        currency = data.currency or accepted[0]
        if currency not in accepted:
            raise UnknownCurrency(
                f"tenure does not bill in {currency!r}; accepted currencies are: {', '.join(accepted)}"
            )
        now = clock.now()
        async with transaction():
            org = await organizations.open_with_owners(
                data.name.strip(),
                data.reseller,
                currency,
                now,
                sandbox=data.sandbox,
                owner_account_id=account.id,
                credit_limit=SANDBOX_CREDIT_LIMIT if data.sandbox else 0,
            )
            await record(org.id, "organization.created", Actor.account(account), now)
        return _org_out(org)

    @get("/{org_id:str}")
    async def get_organization(self, account: Account, org_id: FromPath[str]) -> OrganizationOut:
        found = await access(account, org_id, permissions.ORG_VIEW)
        return _org_out(found.org)

    @get("/{org_id:str}/teams")
    async def list_teams(self, account: Account, org_id: FromPath[str]) -> list[TeamOut]:
        await access(account, org_id, permissions.ORG_VIEW)
        return [_team_out(t) for t in await teams.teams_with_members(org_id)]

    @post("/{org_id:str}/teams", status_code=201)
    async def create_team(self, account: Account, org_id: FromPath[str], data: JSONBody[TeamIn]) -> TeamOut:
        found = await access(account, org_id, permissions.ORG_MANAGE)
        granted = permissions.validate_permissions(data.permissions)
        membership.check_grant(found.granted, granted)
        try:
            async with transaction():
                now = clock.now()
                team = await teams.create_team(org_id, data.name.strip(), granted, now)
                await record(
                    org_id, "team.created", Actor.account(account), now, team_id=team.id, permissions=sorted(granted)
                )
        except teams.TeamNameTaken:
            raise Conflict("team_name_taken", f"this organization already has a team named {data.name!r}") from None
        return _team_out(team)

    @post("/{org_id:str}/teams/{team_id:str}/members", status_code=201)
    async def add_member(
        self, account: Account, org_id: FromPath[str], team_id: FromPath[str], data: JSONBody[MemberIn]
    ) -> MemberOut:
        found = await access(account, org_id, permissions.ORG_MANAGE)
        team = await teams.get_team(org_id, team_id)
        if team is None:
            raise NotFound("team", team_id)
        await check_team_change(found, account, team)
        member = await accounts.by_email(data.email)
        if member is None:
            raise Invalid(
                "unknown_account",
                f"no account uses {data.email!r}; the person must create an account first (POST /v1/accounts)",
            )
        try:
            async with transaction():
                await teams.add_member(org_id, team_id, member.id, clock.now())
                await record(
                    org_id,
                    "member.added",
                    Actor.account(account),
                    clock.now(),
                    team_id=team_id,
                    account_id=member.id,
                )
        except teams.AlreadyMember:
            raise Conflict("already_member", f"{data.email!r} is already in team {team.name!r}") from None
        return MemberOut(id=member.id, email=member.email, name=member.name)

    @delete("/{org_id:str}/teams/{team_id:str}/members/{member_id:str}", status_code=204)
    async def remove_member(
        self, account: Account, org_id: FromPath[str], team_id: FromPath[str], member_id: FromPath[str]
    ) -> None:
        found = await access(account, org_id, permissions.ORG_MANAGE)
        async with transaction():
            await organizations.lock(org_id)
            team = await teams.get_team(org_id, team_id)
            if team is None:
                raise NotFound("team", team_id)
            await check_team_change(found, account, team)
            owners = await teams.owner_ids(org_id)
            membership.check_removal(owners, member_id, team.is_owner)
            if not await teams.remove_member(team_id, member_id):
                raise NotFound("member", member_id)
            await record(
                org_id, "member.removed", Actor.account(account), clock.now(), team_id=team_id, account_id=member_id
            )

    @post("/{org_id:str}/leave", status_code=204)
    async def leave(self, account: Account, org_id: FromPath[str]) -> None:
        """Leaves every team of the organization; refused to its last owner."""
        await access(account, org_id)
        async with transaction():
            await organizations.lock(org_id)
            membership.check_leave(await teams.owner_ids(org_id), account.id)
            await teams.leave(org_id, account.id)
            await record(org_id, "member.left", Actor.account(account), clock.now(), account_id=account.id)
