"""Checks and parameters of each operation, shared by the API and inbound webhooks.

Each function takes plain values (the organization row, the permissions the caller
holds there, the parsed request) and answers the operation's params, or raises a
named error. The API passes the member's permissions; an inbound webhook verified
with the reseller's secret acts as the reseller itself (every permission).

A purchase's name is checked by the statement that records it (`purchase_name_key` given to
web.accept's `unless_name_held`, `name_taken` answered when it is held): one round trip
for both. A dry run, which records nothing, asks `check_name_free`.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from rules import ledger as booking
from rules import lifecycle, names, permissions, quotes
from rules.catalog import DEFAULT_CATALOG, catalog_for, kind_of
from rules.errors import NameTaken, RuleViolation, TargetMissing
from rules.money import Money
from rules.pricing import Tier
from tables import clients, ledger, product_names, products
from tables.clients import ClientRecord
from tables.operation_params import (
    PurchaseParams,
    ReleaseParams,
    RenewalBatchParams,
    RenewalItem,
    RenewalParams,
)
from tables.organizations import OrganizationRecord
from tables.products import ProductRecord
from web.errors import Invalid, NotFound
from web.schemas.products import BatchRenewalIn, PurchaseIn, ReleaseIn, RenewalIn


async def client_in(org_id: str, client_id: str) -> ClientRecord:
    client = await clients.find(org_id, client_id)
    if client is None:
        raise NotFound("client", client_id)
    return client


async def purchase_params(org: OrganizationRecord, granted: frozenset[str], data: PurchaseIn) -> PurchaseParams:
    permissions.require(granted, permissions.PRODUCT_BUY)
    permissions.require_payment_method(granted, data.payment_method)
    kind = kind_of(DEFAULT_CATALOG, data.kind)
    lifecycle.check_term(kind, data.years)
    name = names.normalize(data.kind, data.name)
    status = None
    if data.client and org.is_reseller:
        status = (await client_in(org.id, data.client)).status
    permissions.check_purchase_owner(org.is_reseller, data.client, status)
    return PurchaseParams(
        kind=data.kind, name=name, years=data.years, payment_method=data.payment_method, client_id=data.client
    )


def purchase_name_key(org: OrganizationRecord, params: PurchaseParams) -> str | None:
    """The name a purchase takes, as products hold it (None: its kind's names are not exclusive)."""
    return product_names.name_key(params.kind, params.name, org.sandbox)


def name_taken(name: str) -> NameTaken:
    return NameTaken(f"{name} is already held by another product; choose another name")


async def check_name_free(org: OrganizationRecord, params: PurchaseParams) -> None:
    """name_taken if another product holds the purchase's name now (dry runs: a real purchase
    checks it in the statement that records it)."""
    if await product_names.name_held(params.kind, params.name, org.sandbox):
        raise name_taken(params.name)


async def renewal_params(product: ProductRecord, granted: frozenset[str], data: RenewalIn) -> RenewalParams:
    permissions.require(granted, permissions.PRODUCT_RENEW)
    permissions.require_payment_method(granted, data.payment_method)
    lifecycle.check_term(kind_of(DEFAULT_CATALOG, product.kind), data.years)
    # Checked again at execution; a guard already stale is refused now (409 expiry_mismatch).
    lifecycle.check_guard(product.expires_at, data.current_expires_at)
    return RenewalParams(
        years=data.years, current_expires_at=data.current_expires_at, payment_method=data.payment_method
    )


async def release_params(
    org: OrganizationRecord, granted: frozenset[str], client_id: str, data: ReleaseIn, claim_days: int
) -> ReleaseParams:
    permissions.require(granted, permissions.CLIENT_MANAGE)
    client = await client_in(org.id, client_id)
    permissions.check_purchase_owner(org.is_reseller, client_id, client.status)
    return ReleaseParams(client_id=client_id, owner_email=data.owner_email, claim_days=claim_days)


def _not_in_organization(product_id: str) -> TargetMissing:
    # One answer for an unknown product and another organization's: existence is not revealed.
    return TargetMissing(f"no product {product_id!r} is in this organization")


async def renewal_batch_params(granted: frozenset[str], data: BatchRenewalIn) -> RenewalBatchParams:
    """A bulk renewal: the caller's permissions for it, each product once. The items themselves
    are checked by their own renewal operations (their guard, term, funds)."""
    permissions.require(granted, permissions.PRODUCT_RENEW)
    for method in sorted({item.payment_method for item in data.items}):
        permissions.require_payment_method(granted, method)
    repeated = sorted(pid for pid, n in Counter(item.product_id for item in data.items).items() if n > 1)
    if repeated:
        named = ", ".join(repr(pid) for pid in repeated[:5]) + (" and others" if len(repeated) > 5 else "")
        raise Invalid("duplicate_product", f"each product may appear once in a batch; send one item for {named}")
    return RenewalBatchParams(
        items=[
            RenewalItem(
                product_id=item.product_id,
                years=item.years,
                current_expires_at=item.current_expires_at,
                payment_method=item.payment_method,
            )
            for item in data.items
        ]
    )


# --- quotes: the prices the actors will charge, for dry runs --------------------------------------


async def purchase_quote(org_id: str, params: PurchaseParams, now: datetime) -> quotes.Priced:
    """The purchase priced as purchases.execute prices it (same rules, same payer tier)."""
    kind = kind_of(catalog_for(await ledger.currency_of(org_id)), params.kind)
    tier = await ledger.current_tier(org_id)
    quote = lifecycle.purchase_quote(kind, params.years, tier, now.replace(microsecond=0))
    return quotes.priced(kind, params.years, tier, quote, org_id, params.payment_method)


async def renewal_quote(
    product: ProductRecord, params: RenewalParams | RenewalItem, now: datetime, tier: Tier | None = None
) -> quotes.Priced:
    """The renewal priced as renewals.execute prices it: guard, lifecycle state, term, payer tier."""
    payer = product.payer_id
    kind = kind_of(catalog_for(await ledger.currency_of(payer)), product.kind)
    tier = tier or await ledger.current_tier(payer)
    quote = lifecycle.renewal_quote(kind, params.years, tier, product.expires_at, params.current_expires_at, now)
    return quotes.priced(kind, params.years, tier, quote, payer, params.payment_method)


async def check_funds(quote: quotes.Priced) -> None:
    """InsufficientFunds if the payer's prepaid balance cannot pay `quote` now;
    CreditLimitExceeded if paying it on invoice would pass the payer's credit limit."""
    account = await ledger.account(quote.payer)
    currency = account.currency if account else quote.price.currency
    if quote.payment_method == booking.INVOICE and account is not None:
        booking.check_credit(Money(account.owed, currency), Money(account.credit_limit, currency), quote.price)
    quotes.spend(Money(account.prepaid if account else 0, currency), quote)


async def free_quote(org: OrganizationRecord, expires_at: datetime | None = None) -> quotes.Priced:
    """Transfers and releases cost nothing; the quote shows the organization's tier."""
    return quotes.free(await ledger.current_tier(org.id), org.currency, expires_at)


async def renewal_batch_quotes(
    org: OrganizationRecord, params: RenewalBatchParams, now: datetime
) -> list[tuple[str, quotes.Priced | None, RuleViolation | None]]:
    """Each item of a bulk renewal as its renewal operation would end: its quote, or the rule it
    breaks. Prepaid items are paid in the order sent from one running balance per payer."""
    rows = await products.many([item.product_id for item in params.items])
    tiers: dict[str, Tier] = {}
    balances: dict[str, Money] = {}
    outcomes: list[tuple[str, quotes.Priced | None, RuleViolation | None]] = []
    for item in params.items:
        product, quote = rows.get(item.product_id), None
        try:
            if product is None or product.organization_id != org.id:
                raise _not_in_organization(item.product_id)
            payer = product.payer_id
            if payer not in tiers:
                tiers[payer] = await ledger.current_tier(payer)
                balances[payer] = Money(*await ledger.prepaid_balance(payer))
            quote = await renewal_quote(product, item, now, tiers[payer])
            balances[payer] = quotes.spend(balances[payer], quote)
            outcomes.append((item.product_id, quote, None))
        except RuleViolation as failure:
            outcomes.append((item.product_id, quote, failure))
    return outcomes
