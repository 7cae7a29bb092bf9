"""A reseller's clients: no account, no access; released ones leave the portfolio."""

from enum import Enum

from piccolo.columns import ForeignKey, Timestamptz, Varchar
from piccolo.table import Table

from tables.organizations import Organization


class ClientStatus(str, Enum):
    active = "active"
    released = "released"


class Client(Table, tablename="clients"):
    id = Varchar(length=40, primary_key=True)
    reseller = ForeignKey(references=Organization, index=True)
    name = Varchar(length=200)
    email = Varchar(length=320)
    external_ref = Varchar(length=200, null=True, default=None)
    ref_key = Varchar(
        length=260, null=True, default=None, unique=True,
        help_text="reseller id + external_ref: one client per reference and reseller",
    )
    status = Varchar(length=20, choices=ClientStatus, default=ClientStatus.active)
    released_to = ForeignKey(references=Organization, null=True, default=None)
    created_at = Timestamptz()
    released_at = Timestamptz(null=True, default=None)


# --- queries -----------------------------------------------------------------

from datetime import datetime  # noqa: E402

from piccolo.query.functions.aggregate import Count  # noqa: E402

from tables.ids import new_id  # noqa: E402


class ExternalRefTaken(Exception):
    pass


async def create(reseller_id: str, name: str, email: str, external_ref: str | None,
                 now: datetime) -> dict:
    row = {"id": new_id("cli"), "reseller": reseller_id, "name": name, "email": email.lower(),
           "external_ref": external_ref,
           "ref_key": f"{reseller_id}:{external_ref}" if external_ref else None,
           "status": ClientStatus.active.value, "released_to": None,
           "created_at": now, "released_at": None}
    inserted = await Client.insert(Client(**row)).on_conflict(
        target=Client.ref_key, action="DO NOTHING").returning(Client.id)
    if not inserted:
        raise ExternalRefTaken(external_ref)
    return row


async def get(reseller_id: str, client_id: str) -> dict | None:
    return await Client.select().where(
        (Client.id == client_id) & (Client.reseller == reseller_id)).first()


async def by_external_ref(reseller_id: str, external_ref: str) -> dict | None:
    return await Client.select().where(Client.ref_key == f"{reseller_id}:{external_ref}").first()


async def product_counts(client_ids: list[str]) -> dict[str, int]:
    from tables.products import Product

    if not client_ids:
        return {}
    rows = await Product.select(Product.client, Count(alias="n")).where(
        Product.client.is_in(client_ids) & (Product.state != "deleted")
    ).group_by(Product.client)
    return {r["client"]: r["n"] for r in rows}


async def page(reseller_id: str, status: str | None, after: str | None, limit: int) -> list[dict]:
    query = Client.select().where(Client.reseller == reseller_id)
    if status:
        query = query.where(Client.status == status)
    if after:
        query = query.where(Client.id > after)
    return await query.order_by(Client.id).limit(limit)
