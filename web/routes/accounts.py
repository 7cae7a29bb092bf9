"""Personal accounts: sign-up, claim after a release, and who am I."""

from __future__ import annotations

from litestar import Controller, Request, get, post
from litestar.params import JSONBody

from runtime.clock import clock
from tables import accounts, claims, events, organizations, teams
from tables import event_payloads as payloads
from tables.accounts import AccountRecord
from tables.activity import Actor, record
from tables.engine import transaction
from web.access import Account, key_allows_org, optional_account
from web.errors import Conflict, Invalid
from web.schemas.accounts import AccountCreated, AccountIn, ClaimedOut, ClaimIn, MeOut, MyOrganization, TeamRef


def _invalid_token() -> Invalid:
    return Invalid(
        "invalid_claim_token",
        "this claim token is unknown, used, replaced or expired; ask your reseller to issue a new one",
    )


class AccountController(Controller):
    path = "/v1"
    tags = ["accounts"]

    @post("/accounts", status_code=201, security=[{}])
    async def create_account(self, data: JSONBody[AccountIn]) -> AccountCreated:
        """Creates a personal account; the API key is shown once."""
        try:
            async with transaction():
                row, key = await accounts.create(data.email, data.name.strip(), clock.now())
        except accounts.EmailTaken:
            raise Conflict("email_taken", f"an account already uses {data.email!r}; use its API key") from None
        return AccountCreated(id=row.id, email=row.email, name=row.name, api_key=key)

    @post("/accounts/claim", status_code=201, security=[{}, {"BearerAuth": []}])
    async def claim(self, request: Request, data: JSONBody[ClaimIn]) -> ClaimedOut:
        """Presents a release's one-time claim token: the released organization gets its owner.

        With an API key, the caller's account (whatever its e-mail) joins the organization's
        Owner team. Without one, an account is created (`email` defaults to the release's
        owner_email; 409 `email_taken` if an account has it: send that account's key instead)
        and its API key is shown once."""
        caller: AccountRecord | None = await optional_account(request)
        now = clock.now()
        key = None
        async with transaction():
            pending = await claims.peek(data.claim_token, now)
            if pending is None:
                raise _invalid_token()
            if caller is None:
                org = await organizations.find(pending.organization_id)
                assert org is not None  # organizations are never deleted
                email = data.email or pending.owner_email
                try:
                    caller, key = await accounts.create(email, (data.name or org.name).strip(), now)
                except accounts.EmailTaken:
                    raise Conflict(
                        "email_taken",
                        f"an account already uses {email!r}: send its API key "
                        "(Authorization: Bearer ...) with the claim, or give another email",
                    ) from None
            elif data.email or data.name:
                raise Invalid(
                    "unexpected_fields", "email and name are for a new account: omit them when claiming with an API key"
                )
            done = await claims.redeem(data.claim_token, caller.id, now)
            if done is None:  # a concurrent claim of the same token won
                raise _invalid_token()
            owners = await teams.owner_team_id(done.organization_id)
            assert owners is not None  # every organization has its Owner team
            await teams.add_member(done.organization_id, owners, caller.id, now)
            await events.record(
                "organization.claimed",
                done.reseller_id,
                now,
                data=payloads.OrganizationClaimed(
                    organization_id=done.organization_id, client_id=done.client_id, claimed_at=now.isoformat()
                ),
            )
            for org_id in (done.organization_id, done.reseller_id):
                await record(
                    org_id,
                    "claim.accepted",
                    Actor.account(caller),
                    now,
                    client_id=done.client_id,
                    organization=done.organization_id,
                )
        return ClaimedOut(account_id=caller.id, organization_id=done.organization_id, api_key=key)

    @get("/me")
    async def me(self, account: Account) -> MeOut:
        orgs: dict[str, MyOrganization] = {}
        for row in await teams.memberships_of(account.id):
            if not key_allows_org(account, row.organization_id):
                continue  # the caller's key is limited to other organizations
            org = orgs.setdefault(
                row.organization_id,
                MyOrganization(
                    id=row.organization_id, name=row.organization_name, reseller=row.organization_is_reseller, teams=[]
                ),
            )
            org.teams.append(
                TeamRef(
                    id=row.team_id,
                    name=row.team_name,
                    owner=row.team_is_owner,
                    permissions=sorted(row.team_permissions),
                )
            )
        return MeOut(id=account.id, email=account.email, name=account.name, organizations=list(orgs.values()))
