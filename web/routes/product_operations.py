"""The operations on products an organization already holds: renewals (one product, or up to 1,000
in one request), transfers between a reseller and its clients, and a client's release with all its
products. Each answers 202 with its operation, or with `Dry-Run: 1` every check and the quote
(200, nothing written)."""

from __future__ import annotations

from litestar import Controller, Request, Response, post
from litestar.params import FromPath, JSONBody

from rules import permissions, quotes
from rules.errors import RuleViolation
from rules.operations import OperationKind
from runtime.clock import clock
from tables import ledger, test_clocks
from tables.operation_params import TransferParams
from tables.products import ProductRecord
from web import intake
from web.accept import (
    BATCH_DRY_RUN_RESPONSES,
    DRY_RUN_RESPONSES,
    DryRunHeader,
    Trial,
    accept,
    accepted,
    dry_run,
    dry_run_wanted,
    error_out,
    intake_or_replay,
    quote_out,
    replayed,
)
from web.access import Access, Account, access
from web.routes.clients import reseller_access
from web.routes.products import visible_product
from web.schemas.operations import BatchDryRunOut, DryRunItemOut, OperationOut
from web.schemas.products import BatchRenewalIn, ReleaseIn, RenewalIn, TransferIn


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


class ProductOperationController(Controller):
    tags = ["products"]

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
