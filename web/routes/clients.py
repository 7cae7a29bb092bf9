"""A reseller's portfolio of clients."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from litestar import Controller, Request, get, post
from litestar.params import Parameter

from rules import claims as claim_rules
from rules import permissions
from rules.errors import NotAReseller
from tables import claims, clients
from tables.clock import clock
from tables.engine import transaction
from web.access import Access, access
from web.errors import Conflict, NotFound
from web.schemas import ClaimIssued, ClaimStateOut, ClientIn, ClientOut, Page, cut


def claim_out(claim: dict | None, now: datetime) -> ClaimStateOut | None:
    if claim is None:
        return None
    state = claim_rules.status(claim["claimed_at"], claim["expires_at"], now)
    return ClaimStateOut(status=state.value, expires_at=claim["expires_at"], claimed_at=claim["claimed_at"])


def client_out(row: dict, product_count: int, claim: dict | None = None) -> ClientOut:
    return ClientOut(id=row["id"], reseller_id=row["reseller"], name=row["name"], email=row["email"],
                     external_ref=row["external_ref"], status=row["status"],
                     released_to=row["released_to"], product_count=product_count,
                     created_at=row["created_at"], claim=claim_out(claim, clock.now()))


async def reseller_access(account: dict, org_id: str, needed: str) -> Access:
    found = await access(account, org_id, needed)
    if not found.org["is_reseller"]:
        raise NotAReseller(f"organization {org_id!r} is not a reseller; only resellers have clients")
    return found


class ClientController(Controller):
    path = "/v1/resellers/{org_id:str}/clients"
    tags = ["resellers"]

    @post("/", status_code=201)
    async def create_client(self, account: dict, org_id: str, data: ClientIn) -> ClientOut:
        """Adds a client (no account, no access) to the reseller's portfolio."""
        await reseller_access(account, org_id, permissions.CLIENT_MANAGE)
        try:
            async with transaction():
                row = await clients.create(org_id, data.name.strip(), data.email, data.external_ref,
                                           clock.now())
        except clients.ExternalRefTaken:
            raise Conflict("external_ref_taken",
                           f"a client of this reseller already has external_ref {data.external_ref!r}")
        return client_out(row, 0)

    @get("/")
    async def list_clients(
        self, account: dict, org_id: str,
        status: Literal["active", "released", "all"] = "active",
        after: str | None = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    ) -> Page:
        """The portfolio: active clients by default, each with its number of live products."""
        await reseller_access(account, org_id, permissions.ORG_VIEW)
        rows, cursor = cut(await clients.page(org_id, None if status == "all" else status, after, limit + 1),
                           limit)
        ids = [r["id"] for r in rows]
        counts = await clients.product_counts(ids)
        held = await claims.latest_of_clients(ids)
        return Page(items=[client_out(r, counts.get(r["id"], 0), held.get(r["id"])) for r in rows],
                    next_cursor=cursor)

    @get("/{client_id:str}")
    async def get_client(self, account: dict, org_id: str, client_id: str) -> ClientOut:
        await reseller_access(account, org_id, permissions.ORG_VIEW)
        row = await clients.get(org_id, client_id)
        if row is None:
            raise NotFound("client", client_id)
        counts = await clients.product_counts([client_id])
        held = await claims.latest_of_clients([client_id])
        return client_out(row, counts.get(client_id, 0), held.get(client_id))

    @post("/{client_id:str}/claim", status_code=201)
    async def reissue_claim(self, request: Request, account: dict, org_id: str, client_id: str) -> ClaimIssued:
        """Issues a new claim token for a released client's organization that nobody has claimed
        yet; the previous token stops working. The token is shown once."""
        await reseller_access(account, org_id, permissions.CLIENT_MANAGE)
        now = clock.now()
        async with transaction():
            row = await clients.get(org_id, client_id)
            if row is None:
                raise NotFound("client", client_id)
            current = (await claims.latest_of_clients([client_id])).get(client_id)
            state = current and claim_rules.status(current["claimed_at"], current["expires_at"], now)
            claim_rules.check_reissue(row["status"], state or None)
            expires = claim_rules.expires_at(now, request.app.state.settings.claim_days)
            _, token = await claims.issue(row["released_to"], org_id, client_id, current["owner_email"],
                                          now, expires)
        return ClaimIssued(claim_token=token, expires_at=expires)
