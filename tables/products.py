"""Products: domain names, mailboxes, hosting, certificates."""

from piccolo.columns import Boolean, ForeignKey, Timestamptz, Varchar
from piccolo.table import Table

from tables.clients import Client
from tables.organizations import Organization


class Product(Table, tablename="products"):
    id = Varchar(length=40, primary_key=True)
    kind = Varchar(length=20)
    name = Varchar(length=253)
    organization = ForeignKey(
        references=Organization, index=True,
        help_text="The organization whose portfolio holds it (the reseller for a client's product).",
    )
    client = ForeignKey(references=Client, null=True, default=None, index=True)
    reseller = ForeignKey(references=Organization, null=True, default=None)
    expires_at = Timestamptz(index=True)
    autorenew = Boolean(default=True)
    state = Varchar(length=20, default="active", index=True)
    name_key = Varchar(
        length=280, null=True, default=None, unique=True,
        help_text="kind + name while the product is not deleted: one holder per domain name",
    )
    created_at = Timestamptz()
    updated_at = Timestamptz()
