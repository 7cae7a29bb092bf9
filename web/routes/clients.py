"""A reseller's portfolio of clients."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from rules import claims as claim_rules
from rules import permissions
from rules.errors import ClientNotActive, NotAReseller
from runtime.clock import clock
from tables import claims, clients
from tables.activity import Actor, record
from tables.api_keys import Caller
from tables.claims import ClaimRecord
from tables.clients import ClientRecord
from tables.engine import transaction
from web import listing
from web.access import Access, Account, access
from web.csv_stream import csv_export
from web.errors import Conflict, NotFound
from web.schemas.clients import ClaimIssued, ClaimStateOut, ClientIn, ClientOut, ClientPage, ClientPatch


def claim_out(claim: ClaimRecord | None, now: datetime) -> ClaimStateOut | None:
    if claim is None:
        return None
    state = claim_rules.status(claim.claimed_at, claim.expires_at, now)
    return ClaimStateOut(status=state.value, expires_at=claim.expires_at, claimed_at=claim.claimed_at)


def client_out(row: ClientRecord, product_count: int, claim: ClaimRecord | None = None) -> ClientOut:
    return ClientOut(
        id=row.id,
        reseller_id=row.reseller_id,
        name=row.name,
        email=row.email,
        external_ref=row.external_ref,
        status=row.status,
        released_to=row.released_to,
        product_count=product_count,
        created_at=row.created_at,
        claim=claim_out(claim, clock.now()),
    )


async def reseller_access(account: Caller, org_id: str, needed: str) -> Access:
    found = await access(account, org_id, needed)
    if not found.org.is_reseller:
        raise NotAReseller(f"organization {org_id!r} is not a reseller; only resellers have clients")
    return found


class ClientController(Controller):
    path = "/v1/resellers/{org_id:str}/clients"
    tags = ["resellers"]

    @post("/", status_code=201)
    async def create_client(self, account: Account, org_id: FromPath[str], data: JSONBody[ClientIn]) -> ClientOut:
        """Adds a client (no account, no access) to the reseller's portfolio."""
        await reseller_access(account, org_id, permissions.CLIENT_MANAGE)
        try:
            async with transaction():
                now = clock.now()
                row = await clients.create(org_id, data.name.strip(), data.email, data.external_ref, now)
                await record(org_id, "client.created", Actor.account(account), now, client_id=row.id)
        except clients.ExternalRefTaken:
            raise Conflict(
                "external_ref_taken", f"a client of this reseller already has external_ref {data.external_ref!r}"
            ) from None
        return client_out(row, 0)

    @get("/")
    async def list_clients(
        self,
        request: Request,
        account: Account,
        org_id: FromPath[str],
        status: FromQuery[Literal["active", "released", "all"]] = "active",
        q: Annotated[
            str | None,
            Parameter(
                min_length=1,
                max_length=320,
                pattern=listing.NO_NUL,
                description="case-insensitive part of the name, e-mail or external_ref",
            ),
        ] = None,
        sort: FromQuery[Literal["name", "created_at"] | None] = None,
        order: FromQuery[Literal["asc", "desc"]] = "asc",
        count: Annotated[bool, Parameter(description="also report `total`, every match")] = False,
        after: Annotated[str | None, Parameter(max_length=2000, description="the previous page's next_cursor")] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    ) -> ClientPage:
        """The portfolio: active clients by default, each with its number of live products; sorted
        by id unless `sort`. With `Accept: text/csv`, the whole filtered portfolio as CSV."""
        await reseller_access(account, org_id, permissions.ORG_VIEW)
        text = q.strip().lower() if q else ""
        wanted = clients.Filter(org_id, None if status == "all" else status, (text,) if text else ())
        keyset, sort_name = listing.keyset_for(clients.SORTS, sort, order, after)
        if listing.wants_csv(request):
            return csv_export(
                "clients.csv",
                CLIENT_CSV,
                _with_counts(clients.filtered_batches(wanted, keyset)),
                lambda rows: ([*(r[c] for c in CLIENT_CSV[:-1]), r["product_count"]] for r in rows),
            )
        rows, cursor = listing.cut(await clients.filtered_page(wanted, keyset, limit + 1), limit, keyset, sort_name)
        ids = [r.id for r in rows]
        counts = await clients.product_counts(ids)
        held = await claims.latest_of_clients(ids)
        total = await clients.filtered_count(wanted) if count else None
        return ClientPage(
            items=[client_out(r, counts.get(r.id, 0), held.get(r.id)) for r in rows],
            next_cursor=cursor,
            total=total,
        )

    @patch("/{client_id:str}")
    async def update_client(
        self, account: Account, org_id: FromPath[str], client_id: FromPath[str], data: JSONBody[ClientPatch]
    ) -> ClientOut:
        """Changes an active client's name, e-mail or external_ref (only the fields sent;
        `external_ref: null` removes it)."""
        await reseller_access(account, org_id, permissions.CLIENT_MANAGE)
        try:
            async with transaction():
                row = await clients.lock(org_id, client_id)
                if row is None:
                    raise NotFound("client", client_id)
                _check_active(row, "edited")
                ref = row.external_ref if data.external_ref is msgspec.UNSET else data.external_ref
                row = await clients.update(
                    row,
                    name=row.name if data.name is msgspec.UNSET else data.name.strip(),
                    email=row.email if data.email is msgspec.UNSET else data.email,
                    external_ref=ref,
                )
                await record(
                    org_id,
                    "client.updated",
                    Actor.account(account),
                    clock.now(),
                    client_id=client_id,
                    fields=sorted(
                        f for f in ("name", "email", "external_ref") if getattr(data, f) is not msgspec.UNSET
                    ),
                )
        except clients.ExternalRefTaken:
            raise Conflict(
                "external_ref_taken", f"a client of this reseller already has external_ref {data.external_ref!r}"
            ) from None
        counts = await clients.product_counts([client_id])
        return client_out(row, counts.get(client_id, 0))

    @delete("/{client_id:str}", status_code=204)
    async def delete_client(self, account: Account, org_id: FromPath[str], client_id: FromPath[str]) -> None:
        """Removes an active client that has no products (deleted ones aside: they stay in the
        reseller's history, without a client)."""
        await reseller_access(account, org_id, permissions.CLIENT_MANAGE)
        async with transaction():
            row = await clients.lock(org_id, client_id)
            if row is None:
                raise NotFound("client", client_id)
            _check_active(row, "deleted")
            live = (await clients.product_counts([client_id])).get(client_id, 0)
            if live:
                raise Conflict(
                    "client_has_products",
                    f"client {client_id} still has {live} product(s); transfer them "
                    "(POST /v1/products/{id}/transfers) or let them be deleted first",
                )
            await clients.delete(client_id, clock.now())
            await record(org_id, "client.deleted", Actor.account(account), clock.now(), client_id=client_id)

    @get("/{client_id:str}")
    async def get_client(self, account: Account, org_id: FromPath[str], client_id: FromPath[str]) -> ClientOut:
        await reseller_access(account, org_id, permissions.ORG_VIEW)
        row = await clients.find(org_id, client_id)
        if row is None:
            raise NotFound("client", client_id)
        counts = await clients.product_counts([client_id])
        held = await claims.latest_of_clients([client_id])
        return client_out(row, counts.get(client_id, 0), held.get(client_id))

    @post("/{client_id:str}/claim", status_code=201)
    async def reissue_claim(
        self, request: Request, account: Account, org_id: FromPath[str], client_id: FromPath[str]
    ) -> ClaimIssued:
        """Issues a new claim token for a released client's organization that nobody has claimed
        yet; the previous token stops working. The token is shown once."""
        await reseller_access(account, org_id, permissions.CLIENT_MANAGE)
        now = clock.now()
        async with transaction():
            row = await clients.find(org_id, client_id)
            if row is None:
                raise NotFound("client", client_id)
            current = (await claims.latest_of_clients([client_id])).get(client_id)
            state = current and claim_rules.status(current.claimed_at, current.expires_at, now)
            claim_rules.check_reissue(row.status, state or None)
            expires = claim_rules.expires_at(now, request.app.state.settings.claim_days)
            assert current is not None and row.released_to is not None  # check_reissue: released, with its claim
            _, token = await claims.issue(row.released_to, org_id, client_id, current.owner_email, now, expires)
            await record(
                org_id,
                "claim.reissued",
                Actor.account(account),
                now,
                client_id=client_id,
                released_to=row.released_to,
            )
        return ClaimIssued(claim_token=token, expires_at=expires)


CLIENT_CSV = ["id", "name", "email", "external_ref", "status", "released_to", "created_at", "product_count"]


async def _with_counts(batches):
    """Each batch of clients with its live products counted (one query per batch)."""
    async for rows in batches:
        counts = await clients.product_counts([r["id"] for r in rows])
        yield [{**r, "product_count": counts.get(r["id"], 0)} for r in rows]


def _check_active(row: ClientRecord, done: str) -> None:
    if row.status != clients.ClientStatus.ACTIVE:
        raise ClientNotActive(f"client {row.id} was released; a released client cannot be {done}")
