"""Products: read, list (a reseller sees its clients' too), autorenew, and the operations on them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import Controller, Request, Response, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, Parameter, QueryParameter

from rules import names, permissions, quotes, schedule
from rules.catalog import DEFAULT_CATALOG, kind_of
from rules.errors import PermissionDenied, RuleViolation
from rules.operations import OperationKind
from runtime.clock import clock
from tables import claims, ledger, operations, products, test_clocks
from tables.activity import Actor, record
from tables.api_keys import Caller
from tables.engine import transaction
from tables.operation_params import TransferParams
from tables.products import ProductRecord
from web import intake, listing
from web.accept import (
    BATCH_DRY_RUN_RESPONSES,
    DRY_RUN_RESPONSES,
    DryRunHeader,
    NameHeld,
    Trial,
    accept,
    accepted,
    checked_or_replay,
    dry_run,
    dry_run_wanted,
    error_out,
    intake_or_replay,
    operation_out,
    quote_out,
    replayed,
)
from web.access import Access, Account, access
from web.csv_stream import csv_export
from web.errors import NotFound
from web.routes.clients import reseller_access
from web.schemas.operations import BatchDryRunOut, DryRunItemOut, OperationOut
from web.schemas.products import (
    BatchRenewalIn,
    ProductOut,
    ProductPage,
    ProductPatch,
    PurchaseIn,
    ReleaseIn,
    RenewalIn,
    TransferIn,
)


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


async def renew_many_dry_run(found: Access, data: BatchRenewalIn) -> Response[BatchDryRunOut]:
    """A bulk renewal's checks and quotes, item by item; nothing is written."""
    now = clock.now()
    try:
        params = await intake.renewal_batch_params(found.granted, data)
    except RuleViolation as refused:
        return Response(
            BatchDryRunOut(
                dry_run=True, quote=None, would_fail=error_out(refused), items=[], failing_items=len(data.items)
            ),
            status_code=200,
        )
    outcomes = await intake.renewal_batch_quotes(found.org, params, now)
    total = quotes.total(
        (q for _, q, failure in outcomes if failure is None),
        await ledger.current_tier(found.org.id),
        found.org.currency,
        found.org.id,
    )
    items = [
        DryRunItemOut(product_id=pid, quote=quote_out(q), would_fail=error_out(failure)) for pid, q, failure in outcomes
    ]
    return Response(
        BatchDryRunOut(
            dry_run=True,
            quote=quote_out(total),
            would_fail=None,
            items=items,
            failing_items=sum(1 for item in items if item.would_fail),
        ),
        status_code=200,
    )


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

    @post("/v1/products/{product_id:str}/renewals", status_code=202, responses=DRY_RUN_RESPONSES)
    async def renew(
        self,
        request: Request,
        account: Account,
        product_id: FromPath[str],
        data: JSONBody[RenewalIn],
        dry_run_header: DryRunHeader = None,
    ) -> Response[OperationOut]:
        """Renews, guarded by the expiry you last saw (`current_expires_at`): a replay cannot renew twice,
        and a guard that is already stale is refused at once (409 `expiry_mismatch`).
        With `Dry-Run: 1`: every check, the quote, nothing renewed (200)."""
        if dry_run_wanted(dry_run_header):

            async def check(trial: Trial) -> None:
                product, found = await visible_product(account, product_id, permissions.PRODUCT_RENEW)
                params = await intake.renewal_params(product, found.granted, data)
                trial.quote = await intake.renewal_quote(
                    product, params, await test_clocks.now_for(product.organization_id)
                )
                await intake.check_funds(trial.quote)

            return await dry_run(check)
        product, found = await visible_product(account, product_id, permissions.PRODUCT_RENEW)
        replay, params = await intake_or_replay(
            request, product.organization_id, data, lambda: intake.renewal_params(product, found.granted, data)
        )
        if replay:
            return accepted(replay)
        return accepted(
            await accept(
                request,
                kind=OperationKind.RENEWAL,
                org_id=product.organization_id,
                account_id=account.id,
                data=data,
                params=params,
                product_id=product_id,
            )
        )

    @post("/v1/organizations/{org_id:str}/renewals", status_code=202, responses=BATCH_DRY_RUN_RESPONSES)
    async def renew_many(
        self,
        request: Request,
        account: Account,
        org_id: FromPath[str],
        data: JSONBody[BatchRenewalIn],
        dry_run_header: DryRunHeader = None,
    ) -> Response[OperationOut]:
        """Renews up to 1,000 of the organization's products: `items` [{product_id, years,
        current_expires_at, payment_method = "prepaid"}], each product once. Needs `product:renew`
        and the items' payment methods. Answers 202 with a `renewal_batch` operation; each item
        becomes its own renewal operation (its own guard, charge and events). The batch succeeds
        once every item has finished: `result.items` [{product_id, operation_id, status, error}],
        `failed_items` counting the failed ones (a product not in the organization fails
        `not_found` and is not touched). With `Dry-Run: 1`: the total quote and each item's outcome (200)."""
        wanted_dry_run = dry_run_wanted(dry_run_header)
        found = await access(account, org_id)
        if wanted_dry_run:
            return await renew_many_dry_run(found, data)
        replay, params = await intake_or_replay(
            request, org_id, data, lambda: intake.renewal_batch_params(found.granted, data)
        )
        if replay:
            return accepted(replay)
        return accepted(
            await accept(
                request,
                kind=OperationKind.RENEWAL_BATCH,
                org_id=org_id,
                account_id=account.id,
                data=data,
                params=params,
            )
        )

    @post("/v1/products/{product_id:str}/transfers", status_code=202, responses=DRY_RUN_RESPONSES)
    async def transfer(
        self,
        request: Request,
        account: Account,
        product_id: FromPath[str],
        data: JSONBody[TransferIn],
        dry_run_header: DryRunHeader = None,
    ) -> Response[OperationOut]:
        """A reseller moves a product to one of its clients (`to_client`) or back to itself (null).
        With `Dry-Run: 1`: every check and a zero quote (transfers are free), nothing moved (200)."""

        async def checked(product: ProductRecord, found: Access) -> None:
            status = None
            if data.to_client and found.org.is_reseller:
                status = (await intake.client_in(product.organization_id, data.to_client)).status
            permissions.check_transfer(found.org.is_reseller, status)

        if dry_run_wanted(dry_run_header):

            async def check(trial: Trial) -> None:
                product, found = await visible_product(account, product_id, permissions.PRODUCT_TRANSFER)
                await checked(product, found)
                trial.quote = await intake.free_quote(found.org, product.expires_at)

            return await dry_run(check)
        product, found = await visible_product(account, product_id, permissions.PRODUCT_TRANSFER)
        if replay := await replayed(request, product.organization_id, data):
            return accepted(replay)
        await checked(product, found)
        return accepted(
            await accept(
                request,
                kind=OperationKind.TRANSFER,
                org_id=product.organization_id,
                account_id=account.id,
                data=data,
                params=TransferParams(to_client=data.to_client),
                product_id=product_id,
            )
        )

    @post("/v1/resellers/{org_id:str}/clients/{client_id:str}/release", status_code=202, responses=DRY_RUN_RESPONSES)
    async def release(
        self,
        request: Request,
        account: Account,
        org_id: FromPath[str],
        client_id: FromPath[str],
        data: JSONBody[ReleaseIn],
        dry_run_header: DryRunHeader = None,
    ) -> Response[OperationOut]:
        """Moves the client and all its products to a new organization owned by `owner_email`.
        With `Dry-Run: 1`: every check and a zero quote (releases are free), nothing moved (200)."""
        if dry_run_wanted(dry_run_header):

            async def check(trial: Trial) -> None:
                found = await reseller_access(account, org_id, permissions.CLIENT_MANAGE)
                await intake.release_params(
                    found.org, found.granted, client_id, data, request.app.state.settings.claim_days
                )
                trial.quote = await intake.free_quote(found.org)

            return await dry_run(check)
        found = await reseller_access(account, org_id, permissions.CLIENT_MANAGE)
        replay, params = await intake_or_replay(
            request,
            org_id,
            data,
            lambda: intake.release_params(
                found.org, found.granted, client_id, data, request.app.state.settings.claim_days
            ),
        )
        if replay:
            return accepted(replay)
        return accepted(
            await accept(
                request, kind=OperationKind.RELEASE, org_id=org_id, account_id=account.id, data=data, params=params
            )
        )

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
