"""Personal accounts: sign-up, claim after a release, and who am I."""

from __future__ import annotations

from litestar import Controller, get, post

from tables import accounts, organizations
from tables.clock import clock
from tables.engine import transaction
from web.errors import Conflict, Invalid
from web.schemas import AccountCreated, AccountIn, ApiKeyOut, ClaimIn, MeOut, MyOrganization, TeamRef


class AccountController(Controller):
    path = "/v1"
    tags = ["accounts"]

    @post("/accounts", status_code=201, security=[{}])
    async def create_account(self, data: AccountIn) -> AccountCreated:
        """Creates a personal account; the API key is shown once."""
        try:
            async with transaction():
                row, key = await accounts.create(data.email, data.name.strip(), clock.now())
        except accounts.EmailTaken:
            raise Conflict("email_taken", f"an account already uses {data.email!r}; "
                           "use its API key, or its claim token if it was created by a release")
        return AccountCreated(id=row["id"], email=row["email"], name=row["name"], api_key=key)

    @post("/accounts/claim", status_code=201, security=[{}])
    async def claim(self, data: ClaimIn) -> ApiKeyOut:
        """Trades a release's one-time claim token for the account's API key."""
        async with transaction():
            key = await accounts.redeem_claim_token(data.claim_token, clock.now())
            account = await accounts.by_key(key) if key else None
        if account is None:
            raise Invalid("invalid_claim_token", "this claim token is unknown, used or expired; "
                          "ask your reseller for a new release")
        return ApiKeyOut(account_id=account["id"], api_key=key)

    @get("/me")
    async def me(self, account: dict) -> MeOut:
        orgs: dict[str, MyOrganization] = {}
        for row in await organizations.memberships_of(account["id"]):
            org = orgs.setdefault(row["organization.id"], MyOrganization(
                id=row["organization.id"], name=row["organization.name"],
                reseller=row["organization.is_reseller"], teams=[]))
            org.teams.append(TeamRef(
                id=row["team.id"], name=row["team.name"], owner=row["team.is_owner"],
                permissions=sorted(row["team.permissions"].split())))
        return MeOut(id=account["id"], email=account["email"], name=account["name"],
                     organizations=list(orgs.values()))
