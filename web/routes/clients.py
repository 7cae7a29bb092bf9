"""A reseller's portfolio of clients."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, get, post
from litestar.params import Parameter

from rules import permissions
from rules.errors import NotAReseller
from tables import clients
from tables.clock import clock
from tables.engine import transaction
from web.access import Access, access
from web.errors import Conflict, NotFound
from web.schemas import ClientIn, ClientOut, Page, cut


def client_out(row: dict, product_count: int) -> ClientOut:
    return ClientOut(id=row["id"], reseller_id=row["reseller"], name=row["name"], email=row["email"],
                     external_ref=row["external_ref"], status=row["status"],
                     released_to=row["released_to"], product_count=product_count,
                     created_at=row["created_at"])


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
        counts = await clients.product_counts([r["id"] for r in rows])
        return Page(items=[client_out(r, counts.get(r["id"], 0)) for r in rows], next_cursor=cursor)

    @get("/{client_id:str}")
    async def get_client(self, account: dict, org_id: str, client_id: str) -> ClientOut:
        await reseller_access(account, org_id, permissions.ORG_VIEW)
        row = await clients.get(org_id, client_id)
        if row is None:
            raise NotFound("client", client_id)
        counts = await clients.product_counts([client_id])
        return client_out(row, counts.get(client_id, 0))
