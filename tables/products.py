"""Products: domain names, mailboxes, hosting, certificates."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import msgspec
from piccolo.columns import Boolean, ForeignKey, Timestamptz, Varchar
from piccolo.columns.combination import WhereRaw
from piccolo.table import Table

from rules import billing
from rules.catalog import Kind
from runtime.ids import new_id
from tables import keyset
from tables.clients import Client
from tables.engine import locked
from tables.organizations import Organization
from tables.product_names import name_key

SCHEDULE_COLUMNS = ("next_autorenew_at", "next_reminder_at", "next_state_at")


class ProductState(StrEnum):
    """The states a product row holds: the values of `rules.lifecycle.State`, which says what
    they mean and how a product moves between them (tables/ does not import rules/; a unit test
    keeps the two equal)."""

    ACTIVE = "active"
    GRACE = "grace"
    REDEMPTION = "redemption"
    PENDING_DELETE = "pending_delete"
    DELETED = "deleted"


class Product(Table, tablename="products"):
    id = Varchar(length=40, primary_key=True)
    kind = Varchar(length=20, choices=Kind, help_text="domain, mailbox, hosting, certificate (rules.catalog.Kind).")
    name = Varchar(length=253)
    organization = ForeignKey(
        references=Organization,
        index=True,
        help_text="The organization whose portfolio holds it (the reseller for a client's product).",
    )
    client = ForeignKey(
        references=Client,
        null=True,
        default=None,
        index=True,
        help_text="The reseller's client it is for; null: its own.",
    )
    reseller = ForeignKey(
        references=Organization,
        null=True,
        default=None,
        help_text="The reseller that pays for it, for a client's product.",
    )
    expires_at = Timestamptz()
    autorenew = Boolean(default=True, help_text="Renewed for a year by the autorenew sweep before it expires.")
    state = Varchar(length=20, choices=ProductState, default=ProductState.ACTIVE)
    name_key = Varchar(
        length=280,
        null=True,
        default=None,
        unique=True,
        help_text="kind + name while the product is not deleted: one holder per domain name",
    )
    created_at = Timestamptz()
    updated_at = Timestamptz()


class ProductSchedule(Table, tablename="product_schedules"):
    """When the sweeps next need a product, one narrow row per product.

    Kept out of `products` on purpose: a lease rewrites these instants, and on a wide
    row with many indexes every such update would add an entry to each of them.
    """

    product = ForeignKey(references=Product, primary_key=True)
    next_autorenew_at = Timestamptz(
        null=True, default=None, index=True, help_text="When the autorenew sweep next looks at it."
    )
    next_reminder_at = Timestamptz(
        null=True, default=None, index=True, help_text="When the next product.expiring reminder is due."
    )
    next_state_at = Timestamptz(null=True, default=None, index=True, help_text="When its lifecycle state next changes.")
    sandbox = Boolean(
        default=False,
        help_text="A sandbox's product: its test clock runs these instants, the production sweeps skip it.",
    )


# --- queries -----------------------------------------------------------------


PUBLIC = (
    Product.id,
    Product.kind,
    Product.name,
    Product.organization,
    Product.client,
    Product.reseller,
    Product.expires_at,
    Product.autorenew,
    Product.state,
    Product.created_at,
    Product.updated_at,
)


class ProductRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A product as the other layers read it. Built from a row of `PUBLIC` columns by
    `record` (msgspec.convert, in C): the `name=`s are the columns the fields are read from."""

    id: str
    kind: str  # domain, mailbox, hosting, certificate (rules.catalog)
    name: str
    # Whose portfolio holds it (the reseller, for a client's product).
    organization_id: str = msgspec.field(name="organization")
    # The reseller's client it is for; None: the organization's own.
    client_id: str | None = msgspec.field(name="client")
    # The reseller that pays for it, for a client's product.
    reseller_id: str | None = msgspec.field(name="reseller")
    expires_at: datetime
    autorenew: bool
    state: ProductState
    created_at: datetime
    updated_at: datetime

    @property
    def payer_id(self) -> str:
        """Who pays for it (rules.billing.payer_of)."""
        return billing.payer_of(self.organization_id, self.reseller_id)


def record(row: dict) -> ProductRecord:
    return msgspec.convert(row, ProductRecord)


async def insert(
    *,
    kind: str,
    name: str,
    organization_id: str,
    client_id: str | None,
    reseller_id: str | None,
    expires_at: datetime,
    now: datetime,
    schedule: dict,
    autorenew: bool = True,
    sandbox: bool = False,
) -> str | None:
    """Creates the product; None if its (domain) name is already held."""
    product_id = new_id("prd")
    inserted = (
        await Product.insert(
            Product(
                id=product_id,
                kind=kind,
                name=name,
                organization=organization_id,
                client=client_id,
                reseller=reseller_id,
                expires_at=expires_at,
                autorenew=autorenew,
                state=ProductState.ACTIVE,
                name_key=name_key(kind, name, sandbox),
                created_at=now,
                updated_at=now,
            )
        )
        .on_conflict(target=Product.name_key, action="DO NOTHING")
        .returning(Product.id)
    )
    if not inserted:
        return None
    await ProductSchedule.insert(ProductSchedule(product=product_id, sandbox=sandbox, **schedule))
    return product_id


async def get(product_id: str) -> ProductRecord | None:
    row = await Product.select(*PUBLIC).where(Product.id == product_id).first()
    return None if row is None else record(row)


async def many(product_ids: list[str]) -> dict[str, ProductRecord]:
    """The products among `product_ids` that exist, by id (read in chunks of 500 ids)."""
    found: dict[str, ProductRecord] = {}
    for start in range(0, len(product_ids), 500):
        rows = await Product.select(*PUBLIC).where(Product.id.is_in(product_ids[start : start + 500]))
        found.update((row["id"], record(row)) for row in rows)
    return found


async def lock(product_id: str) -> dict | None:
    """Reads the product for update (PostgreSQL row lock; SQLite's IMMEDIATE transaction serialises)."""
    return await locked(Product.select(*PUBLIC).where(Product.id == product_id)).first()


async def update(product_id: str, now: datetime, **values) -> None:
    """Updates product columns and, for the next_*_at keys, its schedule row."""
    planned = {getattr(ProductSchedule, k): values.pop(k) for k in SCHEDULE_COLUMNS if k in values}
    await Product.update({**{getattr(Product, k): v for k, v in values.items()}, Product.updated_at: now}).where(
        Product.id == product_id
    )
    if planned:
        await ProductSchedule.update(planned).where(ProductSchedule.product == product_id)


async def lock_full(product_id: str) -> dict | None:
    """The whole row (schedule columns included), locked on PostgreSQL."""
    return await locked(Product.select().where(Product.id == product_id)).first()


# --- portfolio queries: filters, keyset pages, exports --------------------------


SORTS = {"id": Product.id, "expires_at": Product.expires_at, "name": Product.name, "created_at": Product.created_at}


def like_any(columns: tuple[str, ...], texts: tuple[str, ...]) -> WhereRaw:
    """Case-insensitive "contains" over raw column names, for any of `texts` (already lower case);
    LIKE's wildcards in the texts are matched literally on both backends."""
    patterns = ["%" + t.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%" for t in texts]
    sql = " OR ".join(f"lower({column}) LIKE {{}} ESCAPE '!'" for _ in patterns for column in columns)
    return WhereRaw(f"({sql})", *[p for p in patterns for _ in columns])


@dataclass(frozen=True)
class Filter:
    """Which of an organization's products a list or an export holds."""

    organization_id: str
    client_id: str | None = None
    expires_before: datetime | None = None  # expires_at < this
    expires_after: datetime | None = None  # expires_at >= this
    state: str | None = None
    kind: str | None = None
    autorenew: bool | None = None
    name_contains: tuple[str, ...] = ()  # lower-case forms, any of which (see rules.names.search_forms)

    def conditions(self) -> list:
        found = [Product.organization == self.organization_id]
        if self.client_id:
            found.append(Product.client == self.client_id)
        if self.expires_before is not None:
            found.append(Product.expires_at < self.expires_before)
        if self.expires_after is not None:
            found.append(Product.expires_at >= self.expires_after)
        if self.state:
            found.append(Product.state == self.state)
        if self.kind:
            found.append(Product.kind == self.kind)
        if self.autorenew is not None:
            found.append(Product.autorenew == self.autorenew)
        if self.name_contains:
            found.append(like_any(("name",), self.name_contains))
        return found

    def select(self):
        return Product.select(*PUBLIC).where(*self.conditions())


async def filtered_page(wanted: Filter, order: keyset.Keyset, limit: int) -> list[ProductRecord]:
    return [record(r) for r in await keyset.page(wanted.select, order, limit)]


async def filtered_count(wanted: Filter) -> int:
    return await Product.count().where(*wanted.conditions())


def filtered_batches(wanted: Filter, order: keyset.Keyset):
    """The rows as dicts: they go straight into CSV lines, column by column."""
    return keyset.batches(wanted.select, order)
