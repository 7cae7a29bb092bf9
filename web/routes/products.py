"""Products: read, list (a reseller sees its clients' too), autorenew, and the operations on them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from litestar import Controller, Request, get, patch, post
from litestar.params import Parameter, QueryParameter

from rules import names, permissions, schedule
from rules.errors import PermissionDenied
from rules.catalog import DEFAULT_CATALOG, kind_of
from tables import claims, operations, products
from tables.clock import clock
from tables.engine import transaction
from web import intake, listing
from web.access import access
from web.accept import accept, intake_or_replay, operation_out, replayed
from web.csv_stream import csv_export
from web.errors import NotFound
from web.routes.clients import reseller_access
from web.schemas import (OperationOut, Page, ProductOut, ProductPatch, PurchaseIn, RenewalIn,
                         ReleaseIn, TransferIn, cut)
from web.schemas import ProductPage


def product_out(row: dict) -> ProductOut:
    return ProductOut(id=row["id"], kind=row["kind"], name=row["name"],
                      organization_id=row["organization"], client_id=row["client"],
                      reseller_id=row["reseller"], expires_at=row["expires_at"],
                      autorenew=row["autorenew"], state=row["state"], created_at=row["created_at"])


async def visible_product(account: dict, product_id: str, needed: str) -> tuple[dict, object]:
    """The product and the caller's access to its organization; 404 if not visible to them."""
    product = await products.get(product_id)
    if product is None:
        raise NotFound("product", product_id)
    try:
        found = await access(account, product["organization"], needed)
    except NotFound:
        raise NotFound("product", product_id) from None
    return product, found


class ProductController(Controller):
    tags = ["products"]

    @post("/v1/organizations/{org_id:str}/purchases", status_code=202)
    async def purchase(self, request: Request, account: dict, org_id: str, data: PurchaseIn) -> OperationOut:
        """Buys a product for the organization or, for a reseller, for one of its clients."""
        found = await access(account, org_id)
        replay, params = await intake_or_replay(
            request, org_id, data, lambda: intake.purchase_params(found.org, found.granted, data))
        if replay:
            return replay
        return await accept(request, kind="purchase", org_id=org_id, account_id=account["id"],
                            data=data, params=params)

    @post("/v1/products/{product_id:str}/renewals", status_code=202)
    async def renew(self, request: Request, account: dict, product_id: str, data: RenewalIn) -> OperationOut:
        """Renews, guarded by the expiry you last saw (`current_expires_at`): a replay cannot renew twice."""
        product, found = await visible_product(account, product_id, permissions.PRODUCT_RENEW)
        replay, params = await intake_or_replay(
            request, product["organization"], data, lambda: intake.renewal_params(product, found.granted, data))
        if replay:
            return replay
        return await accept(request, kind="renewal", org_id=product["organization"],
                            account_id=account["id"], data=data, params=params, product_id=product_id)

    @post("/v1/products/{product_id:str}/transfers", status_code=202)
    async def transfer(self, request: Request, account: dict, product_id: str, data: TransferIn) -> OperationOut:
        """A reseller moves a product to one of its clients (`to_client`) or back to itself (null)."""
        product, found = await visible_product(account, product_id, permissions.PRODUCT_TRANSFER)
        if replay := await replayed(request, product["organization"], data):
            return replay
        status = None
        if data.to_client and found.org["is_reseller"]:
            status = (await intake.client_in(product["organization"], data.to_client))["status"]
        permissions.check_transfer(found.org["is_reseller"], status)
        return await accept(request, kind="transfer", org_id=product["organization"],
                            account_id=account["id"], data=data,
                            params={"to_client": data.to_client}, product_id=product_id)

    @post("/v1/resellers/{org_id:str}/clients/{client_id:str}/release", status_code=202)
    async def release(self, request: Request, account: dict, org_id: str, client_id: str,
                      data: ReleaseIn) -> OperationOut:
        """Moves the client and all its products to a new organization owned by `owner_email`."""
        found = await reseller_access(account, org_id, permissions.CLIENT_MANAGE)
        replay, params = await intake_or_replay(
            request, org_id, data, lambda: intake.release_params(found.org, found.granted, client_id, data,
                                                          request.app.state.settings.claim_days))
        if replay:
            return replay
        return await accept(request, kind="release", org_id=org_id, account_id=account["id"], data=data,
                            params=params)

    @get("/v1/operations/{operation_id:str}")
    async def get_operation(self, account: dict, operation_id: str) -> OperationOut:
        """An operation, to members holding the permission its kind needs (`product:view` for
        purchases, renewals and transfers, `client:manage` for releases and client upserts).
        A succeeded release shows its `claim_token` once, to the first such reader."""
        op = await operations.get(operation_id)
        if op is None:
            raise NotFound("operation", operation_id)
        try:
            await access(account, op["organization_id"], permissions.needed_to_read(op["kind"]))
        except (NotFound, PermissionDenied):
            raise NotFound("operation", operation_id) from None
        if op["kind"] == "release" and op["status"] == "succeeded":
            async with transaction():
                token = await claims.reveal_once(operation_id)
            if token:
                op = {**op, "result": {**op["result"], "claim_token": token}}
        return operation_out(op)

    @get("/v1/products/{product_id:str}")
    async def get_product(self, account: dict, product_id: str) -> ProductOut:
        product, _ = await visible_product(account, product_id, permissions.PRODUCT_VIEW)
        return product_out(product)

    @patch("/v1/products/{product_id:str}")
    async def update_product(self, account: dict, product_id: str, data: ProductPatch) -> ProductOut:
        product, _ = await visible_product(account, product_id, permissions.PRODUCT_MANAGE)
        now = clock.now()
        kind = kind_of(DEFAULT_CATALOG, product["kind"])
        plan = schedule.for_product(kind, product["expires_at"], data.autorenew, now)
        async with transaction():
            await products.update(product_id, now, autorenew=data.autorenew,
                                  next_autorenew_at=plan.next_autorenew_at)
        return product_out({**product, "autorenew": data.autorenew})

    @get("/v1/organizations/{org_id:str}/products")
    async def list_products(
        self, request: Request, account: dict, org_id: str,
        client: Annotated[str | None, Parameter(max_length=40, pattern=listing.NO_NUL)] = None,
        expires_before: Annotated[datetime | None, Parameter(
            description="RFC 3339; products expiring strictly before this instant")] = None,
        expires_after: Annotated[datetime | None, Parameter(
            description="RFC 3339; products expiring at or after this instant")] = None,
        product_state: Annotated[ProductState | None, QueryParameter(name="state")] = None,
        kind: ProductKind | None = None,
        autorenew: bool | None = None,
        q: Annotated[str | None, Parameter(
            min_length=1, max_length=253, pattern=listing.NO_NUL,
            description="case-insensitive part of the name; a Unicode domain name (or label) "
                        "also finds its xn-- form")] = None,
        sort: Literal["expires_at", "name", "created_at"] | None = None,
        order: Literal["asc", "desc"] = "asc",
        count: Annotated[bool, Parameter(description="also report `total`, every match")] = False,
        after: Annotated[str | None, Parameter(max_length=2000, description="the previous page's next_cursor")] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    ) -> ProductPage:
        """The organization's products; for a reseller, its own and its active clients', each with
        client_id. Filters combine; sorted by id unless `sort` (ties by id); `after` takes the
        previous page's `next_cursor`. With `Accept: text/csv`, the whole filtered result as CSV."""
        await access(account, org_id, permissions.PRODUCT_VIEW)
        wanted = products.Filter(
            organization_id=org_id, client_id=client,
            expires_before=listing.aware("expires_before", expires_before),
            expires_after=listing.aware("expires_after", expires_after),
            state=product_state, kind=kind, autorenew=autorenew,
            name_contains=names.search_forms(q) if q else ())
        keyset, sort_name = listing.keyset_for(products.SORTS, sort, order, after)
        if listing.wants_csv(request):
            return csv_export("products.csv", PRODUCT_CSV, products.filtered_batches(wanted, keyset),
                              lambda rows: ([r[c] for c in PRODUCT_CSV_FIELDS] for r in rows))
        rows, cursor = listing.cut(await products.filtered_page(wanted, keyset, limit + 1), limit,
                                   keyset, sort_name)
        total = await products.filtered_count(wanted) if count else None
        return ProductPage(items=[product_out(r) for r in rows], next_cursor=cursor, total=total)


ProductState = Literal["active", "grace", "redemption", "pending_delete", "deleted"]
ProductKind = Literal["domain", "mailbox", "hosting", "certificate"]
PRODUCT_CSV = ["id", "kind", "name", "organization_id", "client_id", "reseller_id", "expires_at",
               "autorenew", "state", "created_at"]
PRODUCT_CSV_FIELDS = ["id", "kind", "name", "organization", "client", "reseller", "expires_at",
                      "autorenew", "state", "created_at"]
