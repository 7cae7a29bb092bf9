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
