"""msgspec Structs for requests and answers, one per use."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Literal, Protocol, TypeVar

import msgspec
from msgspec import Meta, Struct

from rules.price_list import CURRENCIES
from rules.urls import check_well_formed
from rules.webhooks import EVENT_TYPES

# Every string a request stores or looks up is checked here, once: no control characters
# (C0, DEL, C1: NUL breaks PostgreSQL, line breaks break logs). msgspec checks the length
# bounds first, so a pattern only ever runs on a short string.
CONTROL_CHARACTERS = r"\x00-\x1f\x7f-\x9f"
# A look-ahead over the whole string: `$` alone would let a trailing line break through.
TEXT_PATTERN = f"^(?![\\s\\S]*[{CONTROL_CHARACTERS}])"
# At least one non-blank character (names are stored stripped).
NAME_PATTERN = TEXT_PATTERN + r"\s*\S"
EMAIL_PATTERN = TEXT_PATTERN + r"[^@\s]+@[^@\s]+\.[^@\s]+$"

# How a failed pattern reads in a 400 answer ("Expected <this> - at `$.field`").
PATTERN_MEANINGS = {
    TEXT_PATTERN: "text without control characters (such as NUL or line breaks)",
    NAME_PATTERN: "a name with at least one visible character and no control characters (such as NUL or line breaks)",
    EMAIL_PATTERN: "an e-mail address like name@example.com, without spaces or control characters",
}

Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=NAME_PATTERN)]
Email = Annotated[str, Meta(min_length=3, max_length=320, pattern=EMAIL_PATTERN)]
# Ids and references (an id of ours, a client's external_ref).
Ident = Annotated[str, Meta(min_length=1, max_length=200, pattern=TEXT_PATTERN)]
Currency = Annotated[str, Meta(pattern=r"^[A-Z]{3}$")]
# The currencies with a price list (rules/price_list.toml): what an organization may be billed in.
PriceListCurrency = enum.StrEnum("PriceListCurrency", {code: code for code in sorted(CURRENCIES)})  # type: ignore[misc]


class MoneyIO(Struct):
    amount: int
    currency: Currency


# Keeps every stored amount and balance far inside a 64-bit integer on both backends.
MAX_AMOUNT = 10**12


class MoneyIn(Struct):
    amount: Annotated[int, Meta(le=MAX_AMOUNT, description="minor units, at most 10^12")]
    currency: Currency


class AccountIn(Struct, forbid_unknown_fields=True):
    email: Email
    name: Name


class AccountCreated(Struct):
    id: str
    email: str
    name: str
    api_key: str


class ClaimIn(Struct, forbid_unknown_fields=True):
    claim_token: Annotated[str, Meta(min_length=1, max_length=200)]
    # Only without an API key, for the account to create: defaults to the release's owner_email.
    email: Email | None = None
    name: Name | None = None


class ClaimedOut(Struct):
    account_id: str
    organization_id: str
    api_key: str | None  # only for an account created by this claim; shown once


class ClaimIssued(Struct):
    claim_token: str  # shown once
    expires_at: datetime


class ClaimStateOut(Struct):
    status: Literal["pending", "expired", "claimed"]
    expires_at: datetime
    claimed_at: datetime | None


class TeamRef(Struct):
    id: str
    name: str
    permissions: list[str]
    owner: bool


class MyOrganization(Struct):
    id: str
    name: str
    reseller: bool
    teams: list[TeamRef]


class MeOut(Struct):
    id: str
    email: str
    name: str
    organizations: list[MyOrganization]


class OrganizationIn(Struct, forbid_unknown_fields=True):
    name: Name
    reseller: bool = False
    # One of TENURE_CURRENCIES (default EUR, USD, GBP): what it is billed in, for good.
    # Left out: the first of TENURE_CURRENCIES.
    # (A subset of the price lists, which the schema lists; others: 400 `unknown_currency`.)
    currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$", extra_json_schema={"enum": sorted(CURRENCIES)})] | None = None
    sandbox: bool = False  # play products on a test clock (POST .../test-clock)


class OrganizationOut(Struct):
    id: str
    name: str
    reseller: bool
    currency: str
    created_at: datetime
    sandbox: bool = False


class MemberOut(Struct):
    id: str
    email: str
    name: str


class TeamIn(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=100, pattern=NAME_PATTERN)]
    permissions: list[str] = msgspec.field(default_factory=list)


class TeamOut(Struct):
    id: str
    name: str
    permissions: list[str]
    owner: bool
    members: list[MemberOut]


class MemberIn(Struct, forbid_unknown_fields=True):
    email: Email


class FundsIn(Struct, forbid_unknown_fields=True):
    amount: MoneyIn


class FundsOut(Struct):
    operation_id: str
    amount: MoneyIO
    balance: MoneyIO


class ClientIn(Struct, forbid_unknown_fields=True):
    name: Name
    email: Email
    external_ref: Ident | None = None


class ClientOut(Struct):
    id: str
    reseller_id: str
    name: str
    email: str
    external_ref: str | None
    status: str
    released_to: str | None
    product_count: int
    created_at: datetime
    claim: ClaimStateOut | None = None  # a released client's organization: awaiting its claim, or claimed


class Page(Struct):
    items: list
    next_cursor: str | None


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


Row = TypeVar("Row", bound=dict | _Identified)  # a row as a dict, or a record with an `id`


def cut(rows: list[Row], limit: int) -> tuple[list[Row], str | None]:
    """Rows fetched with `limit + 1` (dicts or records): the page, and the cursor to the next one
    (None at the end)."""
    if len(rows) > limit:
        last = rows[limit - 1]
        return rows[:limit], last["id"] if isinstance(last, dict) else last.id
    return rows, None


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


class ErrorOut(Struct):
    code: str
    message: str


class OperationOut(Struct):
    id: str
    kind: str
    status: str
    error: ErrorOut | None
    result: dict | None
    organization_id: str
    product_id: str | None
    created_at: datetime
    finished_at: datetime | None


class FailureOut(Struct):
    """Ops only: the last unexpected exception of an operation."""

    type: str | None
    message: str
    traceback: str | None
    attempts: int
    at: str | None = None


class OpsOperationOut(OperationOut):
    """Ops only: an operation with its attempts, reference and last unexpected exception."""

    attempts: int
    reference: str | None
    failure: FailureOut | None
    params: dict


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


# The event catalog, as the OpenAPI schema shows it on every field that subscribes to events.
EventTypes = Annotated[
    list[str],
    Meta(description="Event types to receive; empty: all of them. The catalog: " + ", ".join(sorted(EVENT_TYPES))),
]


# Checked by rules.urls (422 `invalid_url`, saying what is wrong), not by a pattern here.
Url = Annotated[
    str,
    Meta(
        min_length=8,
        max_length=2000,
        description="an http(s) URL reachable on the public internet, without spaces or control characters",
    ),
]


class EndpointIn(Struct, forbid_unknown_fields=True):
    url: Url
    event_types: EventTypes = msgspec.field(default_factory=list)
    description: Annotated[str, Meta(max_length=500, pattern=TEXT_PATTERN)] = ""

    def __post_init__(self) -> None:
        check_well_formed(self.url)  # 422 invalid_url, raised through the decoder


class EndpointOut(Struct):
    id: str
    url: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    secret: str | None = None  # only in the answer that creates the endpoint
    description: str = ""


class AttemptOut(Struct):
    attempted_at: datetime
    status_code: int | None
    duration_ms: int
    response_excerpt: str
    error: str | None


class DeliveryOut(Struct):
    id: str
    event_id: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    attempt_log: list[AttemptOut]


class DeliveryPage(Struct):
    items: list[DeliveryOut]
    next_cursor: str | None  # pass it back as `after` for the next page


class InboundSecretOut(Struct):
    secret: str
    previous_valid_until: datetime | None


class InboundAccepted(Struct):
    operation: OperationOut


class ClientPatch(Struct, forbid_unknown_fields=True):
    """Only the fields sent change; `external_ref: null` removes the reference."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    email: Email | msgspec.UnsetType = msgspec.UNSET
    external_ref: Ident | None | msgspec.UnsetType = msgspec.UNSET


class ProductPage(Struct, omit_defaults=True):
    items: list[ProductOut]
    next_cursor: str | None  # pass it back as `after` for the next page
    total: int | None = None  # every match of the filters, with `count=true`


class ClientPage(Struct, omit_defaults=True):
    items: list[ClientOut]
    next_cursor: str | None
    total: int | None = None


class OperationPage(Struct, omit_defaults=True):
    items: list[OperationOut]
    next_cursor: str | None
    total: int | None = None


class ActorOut(Struct):
    type: str  # account, webhook, system
    id: str  # the account's id, the reseller webhook's webhook-id, or "system"
    key_id: str | None  # the API key an account used


class ActivityOut(Struct):
    id: str
    kind: str
    actor: ActorOut
    organization_id: str
    product_id: str | None
    client_id: str | None
    operation_id: str | None
    details: dict
    created_at: datetime


class ActivityPage(Struct, omit_defaults=True):
    items: list[ActivityOut]
    next_cursor: str | None  # pass it back as `after` for the next (older) page
    total: int | None = None  # every match of the filters, with `count=true`


class EventOut(Struct):
    id: str  # the `webhook-id` its deliveries carry
    type: str
    timestamp: str
    data: dict
    sandbox: bool = False  # a sandbox organization's event (its timestamp is the test clock's)


class EventFeed(Struct):
    items: list[EventOut]
    next_after: str | None  # the last event listed (else the `after` given): ask again with it
    has_more: bool  # more events are already there


# --- dry runs and bulk renewals ---------------------------------------------------------------

MAX_BATCH_ITEMS = 1000


class QuoteOut(Struct):
    """What the operation would cost: `price` = `list_price` less `discount_percent`, plus
    `restore_fee`. Transfers and releases cost nothing (zero amounts, no payer)."""

    price: MoneyIO
    list_price: MoneyIO
    discount_percent: int
    tier: str
    restore_fee: MoneyIO
    new_expires_at: datetime | None
    payer: str | None
    payment_method: str | None


class DryRunOut(Struct):
    dry_run: bool
    quote: QuoteOut | None  # null when a check fails before the price is known
    would_fail: ErrorOut | None  # the error the real request would end with; null if none


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


class DryRunItemOut(Struct):
    product_id: str
    quote: QuoteOut | None
    would_fail: ErrorOut | None


class BatchDryRunOut(Struct):
    dry_run: bool
    quote: QuoteOut | None  # the total of the items that would renew
    would_fail: ErrorOut | None  # set when the whole batch would be refused (permissions)
    items: list[DryRunItemOut]  # every item, in the order sent
    failing_items: int


KeyName = Annotated[str, Meta(min_length=1, max_length=100, pattern=NAME_PATTERN)]


class ApiKeyIn(Struct, forbid_unknown_fields=True):
    name: KeyName
    # Omitted: every organization the account belongs to / whatever its teams grant.
    organizations: Annotated[list[Ident], Meta(max_length=100)] | None = None
    permissions: Annotated[list[Ident], Meta(max_length=50)] | None = None


class ApiKeyOut(Struct):
    id: str
    name: str
    prefix: str  # the key's first characters, to recognise it
    organizations: list[str] | None  # null: not limited
    permissions: list[str] | None  # null: not narrowed
    created_at: datetime
    last_used_at: datetime | None
    api_key: str | None = None  # only in the answer that creates the key


Description = Annotated[str, Meta(max_length=500, pattern=TEXT_PATTERN)]


class EndpointPatch(Struct, forbid_unknown_fields=True):
    """The fields to change; those omitted (or null) stay as they are."""

    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    enabled: bool | None = None

    def __post_init__(self) -> None:
        if self.url is not None:
            check_well_formed(self.url)  # 422 invalid_url, raised through the decoder


class EndpointSecretOut(Struct):
    secret: str  # shown once
    previous_valid_until: datetime  # the previous secret signs deliveries too until then


class PingOut(Struct):
    event_id: str
    delivery_id: str
    status: str
