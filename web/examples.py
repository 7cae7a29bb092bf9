"""Examples for the OpenAPI document: one per request and answer Struct, built as Structs.

Each example is an instance of the Struct the schema is generated from, encoded by msgspec,
so an example cannot name a field the Struct does not have or miss one it requires.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from web.schemas.accounts import AccountCreated, AccountIn, ApiKeyIn, ClaimIn
from web.schemas.billing import BillingOut, ForecastOut, FundsIn, FundsOut
from web.schemas.clients import ClientIn, ClientOut, ClientPage, ClientPatch
from web.schemas.common import MoneyIn, MoneyIO
from web.schemas.operations import DryRunOut, OperationOut, OperationPage, QuoteOut
from web.schemas.organizations import MemberIn, OrganizationIn, OrganizationOut, TeamIn
from web.schemas.products import (
    BatchRenewalIn,
    BatchRenewalItem,
    ProductOut,
    ProductPage,
    ProductPatch,
    PurchaseIn,
    ReleaseIn,
    RenewalIn,
    TransferIn,
)
from web.schemas.webhooks import EndpointIn

AT = datetime(2027, 1, 31, 9, 30, tzinfo=UTC)
ORG, CLIENT, PRODUCT, OPERATION = "org_2x8Kq4", "cli_7fT2mA", "prd_9cW1zR", "op_3hN6vB"
EUR = MoneyIO(amount=1500, currency="EUR")

OPERATION_OUT = OperationOut(
    id=OPERATION,
    kind="purchase",
    status="succeeded",
    error=None,
    result={"product_id": PRODUCT},
    organization_id=ORG,
    product_id=PRODUCT,
    created_at=AT,
    finished_at=AT,
)
PRODUCT_OUT = ProductOut(
    id=PRODUCT,
    kind="domain",
    name="example.fr",
    organization_id=ORG,
    client_id=CLIENT,
    reseller_id=ORG,
    expires_at=datetime(2028, 1, 31, tzinfo=UTC),
    autorenew=True,
    state="active",
    created_at=AT,
)
CLIENT_OUT = ClientOut(
    id=CLIENT,
    reseller_id=ORG,
    name="Boulangerie Martin",
    email="contact@martin.example",
    external_ref="crm-1042",
    status="active",
    released_to=None,
    product_count=3,
    created_at=AT,
)
QUOTE = QuoteOut(
    price=MoneyIO(amount=1350, currency="EUR"),
    list_price=EUR,
    discount_percent=10,
    tier="B",
    restore_fee=MoneyIO(amount=0, currency="EUR"),
    new_expires_at=datetime(2028, 1, 31, tzinfo=UTC),
    payer=ORG,
    payment_method="prepaid",
)

EXAMPLES: list[msgspec.Struct] = [
    AccountIn(email="ana@reseller.example", name="Ana Costa"),
    AccountCreated(id="acc_5pL0dE", email="ana@reseller.example", name="Ana Costa", api_key="tk_live_..."),
    OrganizationIn(name="Hébergeur Costa", reseller=True),
    OrganizationOut(id=ORG, name="Hébergeur Costa", reseller=True, currency="EUR", created_at=AT),
    TeamIn(name="Support", permissions=["product:view", "product:renew"]),
    MemberIn(email="luc@reseller.example"),
    FundsIn(amount=MoneyIn(amount=100_000, currency="EUR")),
    FundsOut(
        operation_id=OPERATION,
        amount=MoneyIO(amount=100_000, currency="EUR"),
        balance=MoneyIO(amount=250_000, currency="EUR"),
    ),
    ClientIn(name="Boulangerie Martin", email="contact@martin.example", external_ref="crm-1042"),
    ClientPatch(name="Boulangerie Martin & Fils"),
    CLIENT_OUT,
    ClientPage(items=[CLIENT_OUT], next_cursor=None),
    PurchaseIn(kind="domain", name="example.fr", years=1, payment_method="prepaid", client=CLIENT),
    RenewalIn(years=1, current_expires_at=datetime(2028, 1, 31, tzinfo=UTC), payment_method="prepaid"),
    TransferIn(to_client=CLIENT),
    ReleaseIn(owner_email="contact@martin.example"),
    ProductPatch(autorenew=False),
    OPERATION_OUT,
    PRODUCT_OUT,
    ProductPage(items=[PRODUCT_OUT], next_cursor=None),
    OperationPage(items=[OPERATION_OUT], next_cursor=None),
    EndpointIn(url="https://hooks.reseller.example/tenure", event_types=["product.purchased", "product.expiring"]),
    DryRunOut(dry_run=True, quote=QUOTE, would_fail=None),
    BatchRenewalIn(
        items=[BatchRenewalItem(product_id=PRODUCT, years=1, current_expires_at=datetime(2028, 1, 31, tzinfo=UTC))]
    ),
    ApiKeyIn(name="billing robot", organizations=[ORG], permissions=["billing:view"]),
    ClaimIn(claim_token="clm_..."),
    BillingOut(
        balance=MoneyIO(amount=250_000, currency="EUR"),
        volume_12m=MoneyIO(amount=310_000, currency="EUR"),
        tier="B",
        discount_percent=10,
        next_tier_at=MoneyIO(amount=1_000_000, currency="EUR"),
        tier_computed_at=AT,
        owed=MoneyIO(amount=12_000, currency="EUR"),
        credit_limit=MoneyIO(amount=50_000, currency="EUR"),
        low_balance_threshold=MoneyIO(amount=20_000, currency="EUR"),
        autorenew_forecast=ForecastOut(amount=41_500, currency="EUR", products=7),
        below_low_balance=False,
    ),
]

MESSAGES = {
    "name_taken": "example.fr is held by another product; choose another name",
    "not_found": "no organization 'org_2x8Kq4' is visible to you",
    "permission_denied": "this needs the permission product:buy",
    "unauthorized": "send your API key as 'Authorization: Bearer <api key>'",
    "invalid_request": "Expected `int`, got `str` - at `$.years`",
    "insufficient_funds": "the prepaid balance (10.00 EUR) does not cover 13.50 EUR; add funds",
    "rate_limited": "this API key made more than 100 requests per second; slow down and retry in 1 s",
}


def error_message(code: str) -> str:
    return MESSAGES.get(code, f"what went wrong ({code}) and what to send instead")


def add(document: dict) -> None:
    """Puts each example on its component schema (JSON Schema `examples`)."""
    components = document["components"]["schemas"]
    for example in EXAMPLES:
        name = type(example).__name__
        if name in components:
            components[name]["examples"] = [msgspec.to_builtins(example)]
