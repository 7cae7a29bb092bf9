"""A reseller's clients: no account, no access; released ones leave the portfolio."""

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import asyncpg
import msgspec
from piccolo.columns import ForeignKey, Timestamptz, Varchar
from piccolo.query.functions.aggregate import Count
from piccolo.table import Table

from runtime.ids import new_id
from tables import keyset
from tables.engine import insert_unless_taken, locked
from tables.organizations import Organization


class ClientStatus(StrEnum):
    """A reseller's client, or one released into an organization of its own."""

    ACTIVE = "active"
    RELEASED = "released"


class Client(Table, tablename="clients"):
    id = Varchar(length=40, primary_key=True)
    reseller = ForeignKey(references=Organization, index=True)
    name = Varchar(length=200)
    email = Varchar(length=320)
    external_ref = Varchar(length=200, null=True, default=None)
    ref_key = Varchar(
        length=260,
        null=True,
        default=None,
        unique=True,
        help_text="reseller id + external_ref: one client per reference and reseller",
    )
    status = Varchar(length=20, choices=ClientStatus, default=ClientStatus.ACTIVE)
    released_to = ForeignKey(
        references=Organization, null=True, default=None, help_text="The organization it was released into."
    )
    created_at = Timestamptz()
    released_at = Timestamptz(null=True, default=None)


class ClientRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A client as the other layers read it; `record` converts a row (a `name=` is the column read)."""

    id: str
    reseller_id: str = msgspec.field(name="reseller")
    name: str
    email: str  # lower-cased
    external_ref: str | None  # the reseller's own reference for it, unique per reseller
    status: ClientStatus
    released_to: str | None  # the organization it was released into
    created_at: datetime
    released_at: datetime | None


def record(row: dict) -> ClientRecord:
    return msgspec.convert(row, ClientRecord)


def _found(row: dict | None) -> ClientRecord | None:
    return None if row is None else record(row)


# --- queries -----------------------------------------------------------------


class ExternalRefTaken(Exception):
    pass


def _ref_key(reseller_id: str, external_ref: str | None) -> str | None:
    return f"{reseller_id}:{external_ref}" if external_ref else None


async def create(reseller_id: str, name: str, email: str, external_ref: str | None, now: datetime) -> ClientRecord:
    row = {
        "id": new_id("cli"),
        "reseller": reseller_id,
        "name": name,
        "email": email.lower(),
        "external_ref": external_ref,
        "ref_key": _ref_key(reseller_id, external_ref),
        "status": ClientStatus.ACTIVE,
        "released_to": None,
        "created_at": now,
        "released_at": None,
    }
    inserted = await insert_unless_taken(Client(**row), Client.ref_key)
    if not inserted:
        raise ExternalRefTaken(external_ref)
    return record(row)


async def find(reseller_id: str, client_id: str) -> ClientRecord | None:
    return _found(await Client.select().where((Client.id == client_id) & (Client.reseller == reseller_id)).first())


async def by_external_ref(reseller_id: str, external_ref: str) -> ClientRecord | None:
    return _found(await Client.select().where(Client.ref_key == f"{reseller_id}:{external_ref}").first())


async def product_counts(client_ids: list[str]) -> dict[str, int]:
    from tables.products import Product, ProductState

    if not client_ids:
        return {}
    rows = (
        await Product.select(Product.client, Count(alias="n"))
        .where(Product.client.is_in(client_ids) & (Product.state != ProductState.DELETED))
        .group_by(Product.client)
    )
    return {r["client"]: r["n"] for r in rows}


async def page(reseller_id: str, status: str | None, after: str | None, limit: int) -> list[ClientRecord]:
    query = Client.select().where(Client.reseller == reseller_id)
    if status:
        query = query.where(Client.status == status)
    if after:
        query = query.where(Client.id > after)
    return [record(r) for r in await query.order_by(Client.id).limit(limit)]


# --- the portfolio: filters, keyset pages, exports; edits ----------------------


SORTS = {"id": Client.id, "name": Client.name, "created_at": Client.created_at}


@dataclass(frozen=True)
class Filter:
    reseller_id: str
    status: str | None = None  # None: every status
    contains: tuple[str, ...] = ()  # lower-case texts looked for in name, e-mail and external_ref

    def conditions(self) -> list:
        from tables.products import like_any

        found = [Client.reseller == self.reseller_id]
        if self.status:
            found.append(Client.status == self.status)
        if self.contains:
            found.append(like_any(("name", "email", "external_ref"), self.contains))
        return found

    def select(self):
        return Client.select().where(*self.conditions())


async def filtered_page(wanted: Filter, order: keyset.Keyset, limit: int) -> list[ClientRecord]:
    return [record(r) for r in await keyset.page(wanted.select, order, limit)]


async def filtered_count(wanted: Filter) -> int:
    return await Client.count().where(*wanted.conditions())


def filtered_batches(wanted: Filter, order: keyset.Keyset):
    """The rows as dicts: they go straight into CSV lines, column by column."""
    return keyset.batches(wanted.select, order)


async def rename(client_id: str, name: str, email: str) -> None:
    """A `client.upserted` for a known external_ref: its name and email as the back office has them."""
    await Client.update({Client.name: name, Client.email: email.lower()}).where(Client.id == client_id)


async def mark_released(client_id: str, organization_id: str, now: datetime) -> None:
    await Client.update(
        {Client.status: ClientStatus.RELEASED, Client.released_to: organization_id, Client.released_at: now}
    ).where(Client.id == client_id)


async def lock(reseller_id: str, client_id: str) -> ClientRecord | None:
    """The client, row-locked on PostgreSQL (SQLite's IMMEDIATE transaction serialises)."""
    query = Client.select().where((Client.id == client_id) & (Client.reseller == reseller_id))
    return _found(await locked(query).first())


async def update(client: ClientRecord, *, name: str, email: str, external_ref: str | None) -> ClientRecord:
    """Changes the client's details; ExternalRefTaken if another client of its reseller has the ref."""
    ref_key = _ref_key(client.reseller_id, external_ref)
    taken = ref_key and ref_key != _ref_key(client.reseller_id, client.external_ref)
    if taken and await Client.exists().where(Client.ref_key == ref_key):
        raise ExternalRefTaken(external_ref)
    email = email.lower()
    values = {Client.name: name, Client.email: email, Client.external_ref: external_ref, Client.ref_key: ref_key}
    try:
        await Client.update(values).where(Client.id == client.id)
    except (sqlite3.IntegrityError, asyncpg.UniqueViolationError):
        raise ExternalRefTaken(external_ref) from None  # a concurrent edit took it first
    return msgspec.structs.replace(client, name=name, email=email, external_ref=external_ref)


async def delete(client_id: str, now: datetime) -> None:
    """Removes a client without live products; its deleted products stay, as the reseller's."""
    from tables.products import Product

    await Product.update({Product.client: None, Product.updated_at: now}).where(Product.client == client_id)
    await Client.delete().where(Client.id == client_id)


async def move_client_products(client_id: str, new_org_id: str, now: datetime) -> list[str]:
    """Moves every product of a released client into its own organization."""
    from tables.products import Product

    moved = (
        await Product.update(
            {
                Product.organization: new_org_id,
                Product.client: None,
                Product.reseller: None,
                Product.updated_at: now,
            }
        )
        .where(Product.client == client_id)
        .returning(Product.id)
    )
    return [row["id"] for row in moved]
