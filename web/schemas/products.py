"""Products, and the requests that buy, renew (one or many), transfer or release them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct

from web.schemas.common import TEXT_PATTERN, Email, Ident

Years = Annotated[int, Meta(ge=1, le=10, description="1 to 10 years")]
PaymentMethod = Literal["prepaid", "invoice"]


class PurchaseIn(Struct, forbid_unknown_fields=True):
    kind: Literal["domain", "mailbox", "hosting", "certificate"]
    name: Annotated[str, Meta(min_length=1, max_length=1012, pattern=TEXT_PATTERN)]
    years: Years
    payment_method: PaymentMethod
    client: Ident | None = None


class RenewalIn(Struct, forbid_unknown_fields=True):
    years: Years
    current_expires_at: datetime
    payment_method: PaymentMethod


class TransferIn(Struct, forbid_unknown_fields=True):
    to_client: Ident | None = None


class ReleaseIn(Struct, forbid_unknown_fields=True):
    owner_email: Email


class ProductPatch(Struct, forbid_unknown_fields=True):
    autorenew: bool


class ProductOut(Struct):
    id: str
    kind: str
    name: str
    organization_id: str
    client_id: str | None
    reseller_id: str | None
    expires_at: datetime
    autorenew: bool
    state: str
    created_at: datetime


class ProductPage(Struct, omit_defaults=True):
    items: list[ProductOut]
    next_cursor: str | None  # pass it back as `after` for the next page
    total: int | None = None  # every match of the filters, with `count=true`


MAX_BATCH_ITEMS = 1000


class BatchRenewalItem(Struct, forbid_unknown_fields=True):
    product_id: Ident
    years: Years
    current_expires_at: datetime
    payment_method: PaymentMethod = "prepaid"


class BatchRenewalIn(Struct, forbid_unknown_fields=True):
    items: Annotated[
        list[BatchRenewalItem],
        Meta(min_length=1, max_length=MAX_BATCH_ITEMS, description="1 to 1,000 products, each once"),
    ]
