"""Products: bought, read, listed (a reseller sees its clients' too), autorenew switched; and any
operation read back. The operations on a product once held (renewals, transfers, releases) are in
web/routes/product_operations.py."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import Controller, Request, Response, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, Parameter, QueryParameter

from rules import names, permissions, schedule
from rules.catalog import DEFAULT_CATALOG, kind_of
from rules.errors import PermissionDenied
from rules.operations import OperationKind
from runtime.clock import clock
from tables import claims, operations, products, test_clocks
from tables.activity import Actor, record
from tables.api_keys import Caller
from tables.engine import transaction
from tables.products import ProductRecord
from web import intake, listing
from web.accept import (
    DRY_RUN_RESPONSES,
    DryRunHeader,
    NameHeld,
    Trial,
    accept,
    accepted,
    checked_or_replay,
    dry_run,
    dry_run_wanted,
    operation_out,
)
from web.access import Access, Account, access
from web.csv_stream import csv_export
from web.errors import NotFound
from web.schemas.operations import OperationOut
from web.schemas.products import ProductOut, ProductPage, ProductPatch, PurchaseIn


def product_out(row: ProductRecord) -> ProductOut:
    return ProductOut(
        id=row.id,
        kind=row.kind,
        name=row.name,
        organization_id=row.organization_id,
        client_id=row.client_id,
        reseller_id=row.reseller_id,
        expires_at=row.expires_at,
        autorenew=row.autorenew,
        state=row.state,
        created_at=row.created_at,
    )


async def visible_product(account: Caller, product_id: str, needed: str) -> tuple[ProductRecord, Access]:
    """The product and the caller's access to its organization; 404 if not visible to them."""
    product = await products.get(product_id)
    if product is None:
        raise NotFound("product", product_id)
    try:
        found = await access(account, product.organization_id, needed)
    except NotFound:
        raise NotFound("product", product_id) from None
    return product, found


async def accept_purchase(
    request: Request, found: Access, account: Caller, org_id: str, data: PurchaseIn
) -> OperationOut:
    """A purchase accepted, or its replay: the route's handler and its lean path
    (web.lean_accept) both answer with this. One statement on the hot path: the accept
    checks the name and finds a replay's operation."""
    replay, params = await checked_or_replay(
        request, org_id, data, lambda: intake.purchase_params(found.org, found.granted, data)
    )
    if replay:
        return replay
    try:
        return await accept(
            request,
            kind=OperationKind.PURCHASE,
            org_id=org_id,
            account_id=account.id,
            data=data,
            params=params,
            unless_name_held=intake.purchase_name_key(found.org, params),
        )
    except NameHeld:
        raise intake.name_taken(params.name) from None


class ProductController(Controller):
    tags = ["products"]

    @post("/v1/organizations/{org_id:str}/purchases", status_code=202, responses=DRY_RUN_RESPONSES)
    async def purchase(
        self,
        request: Request,
        account: Account,
        org_id: FromPath[str],
        data: JSONBody[PurchaseIn],
        dry_run_header: DryRunHeader = None,
    ) -> Response[OperationOut]:
        """Buys a product for the organization or, for a reseller, for one of its clients.
        With `Dry-Run: 1`: every check, the quote, nothing bought (200)."""
        wanted_dry_run = dry_run_wanted(dry_run_header)
        found = await access(account, org_id)
        if wanted_dry_run:

            async def check(trial: Trial) -> None:
                params = await intake.purchase_params(found.org, found.granted, data)
                await intake.check_name_free(found.org, params)
                trial.quote = await intake.purchase_quote(org_id, params, await test_clocks.now_for(org_id))
                await intake.check_funds(trial.quote)

            return await dry_run(check)
        return accepted(await accept_purchase(request, found, account, org_id, data))

    @get("/v1/operations/{operation_id:str}")
    async def get_operation(self, account: Account, operation_id: FromPath[str]) -> OperationOut:
        """An operation, to members holding the permission its kind needs (`product:view` for
        purchases, renewals and transfers, `client:manage` for releases and client upserts).
        A succeeded release shows its `claim_token` once, to the first such reader."""
        op = await operations.get(operation_id)
        if op is None:
            raise NotFound("operation", operation_id)
        try:
            await access(account, op.organization_id, permissions.needed_to_read(op.kind))
        except (NotFound, PermissionDenied):
            raise NotFound("operation", operation_id) from None
        if op.kind == OperationKind.RELEASE and op.status == operations.OperationStatus.SUCCEEDED:
            async with transaction():
                token = await claims.reveal_once(operation_id)
            if token:
                op = msgspec.structs.replace(op, result={**(op.result or {}), "claim_token": token})
        return operation_out(op)

    @get("/v1/products/{product_id:str}")
    async def get_product(self, account: Account, product_id: FromPath[str]) -> ProductOut:
        product, _ = await visible_product(account, product_id, permissions.PRODUCT_VIEW)
        return product_out(product)

    @patch("/v1/products/{product_id:str}")
    async def update_product(
        self, account: Account, product_id: FromPath[str], data: JSONBody[ProductPatch]
    ) -> ProductOut:
        product, _ = await visible_product(account, product_id, permissions.PRODUCT_MANAGE)
        now = clock.now()
        kind = kind_of(DEFAULT_CATALOG, product.kind)
        plan = schedule.for_product(kind, product.expires_at, data.autorenew, now)
        async with transaction():
            await products.update(product_id, now, autorenew=data.autorenew, next_autorenew_at=plan.next_autorenew_at)
            await record(
                product.organization_id,
                "autorenew.changed",
                Actor.account(account),
                now,
                product_id=product_id,
                client_id=product.client_id,
                autorenew=data.autorenew,
            )
        return product_out(msgspec.structs.replace(product, autorenew=data.autorenew))

    @get("/v1/organizations/{org_id:str}/products")
    async def list_products(
        self,
        request: Request,
        account: Account,
        org_id: FromPath[str],
        client: Annotated[str | None, Parameter(max_length=40, pattern=listing.NO_NUL)] = None,
        expires_before: Annotated[
            datetime | None, Parameter(description="RFC 3339; products expiring strictly before this instant")
        ] = None,
        expires_after: Annotated[
            datetime | None, Parameter(description="RFC 3339; products expiring at or after this instant")
        ] = None,
        product_state: Annotated[ProductState | None, QueryParameter(name="state")] = None,
        kind: FromQuery[ProductKind | None] = None,
        autorenew: FromQuery[bool | None] = None,
        q: Annotated[
            str | None,
            Parameter(
                min_length=1,
                max_length=253,
                pattern=listing.NO_NUL,
                description="case-insensitive part of the name; a Unicode domain name (or label) "
                "also finds its xn-- form",
            ),
        ] = None,
        sort: FromQuery[Literal["expires_at", "name", "created_at"] | None] = None,
        order: FromQuery[Literal["asc", "desc"]] = "asc",
        count: Annotated[bool, Parameter(description="also report `total`, every match")] = False,
        after: Annotated[str | None, Parameter(max_length=2000, description="the previous page's next_cursor")] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    ) -> ProductPage:
        """The organization's products; for a reseller, its own and its active clients', each with
        client_id. Filters combine; sorted by id unless `sort` (ties by id); `after` takes the
        previous page's `next_cursor`. With `Accept: text/csv`, the whole filtered result as CSV."""
        await access(account, org_id, permissions.PRODUCT_VIEW)
        wanted = products.Filter(
            organization_id=org_id,
            client_id=client,
            expires_before=listing.aware("expires_before", expires_before),
            expires_after=listing.aware("expires_after", expires_after),
            state=product_state,
            kind=kind,
            autorenew=autorenew,
            name_contains=names.search_forms(q) if q else (),
        )
        keyset, sort_name = listing.keyset_for(products.SORTS, sort, order, after)
        if listing.wants_csv(request):
            return csv_export(
                "products.csv",
                PRODUCT_CSV,
                products.filtered_batches(wanted, keyset),
                lambda rows: ([r[c] for c in PRODUCT_CSV_FIELDS] for r in rows),
            )
        rows, cursor = listing.cut(await products.filtered_page(wanted, keyset, limit + 1), limit, keyset, sort_name)
        total = await products.filtered_count(wanted) if count else None
        return ProductPage(items=[product_out(r) for r in rows], next_cursor=cursor, total=total)


ProductState = Literal["active", "grace", "redemption", "pending_delete", "deleted"]
ProductKind = Literal["domain", "mailbox", "hosting", "certificate"]
PRODUCT_CSV = [
    "id",
    "kind",
    "name",
    "organization_id",
    "client_id",
    "reseller_id",
    "expires_at",
    "autorenew",
    "state",
    "created_at",
]
PRODUCT_CSV_FIELDS = [
    "id",
    "kind",
    "name",
    "organization",
    "client",
    "reseller",
    "expires_at",
    "autorenew",
    "state",
    "created_at",
]
