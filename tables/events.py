"""Outbound events, written in the transaction of the change they describe."""

from piccolo.columns import JSON, Timestamptz, Varchar
from piccolo.table import Table


class Event(Table, tablename="events"):
    id = Varchar(length=40, primary_key=True)
    type = Varchar(length=40, index=True)
    organization_id = Varchar(length=40, index=True, help_text="The organization told (never a client).")
    product_id = Varchar(length=40, null=True, default=None)
    operation_id = Varchar(length=40, null=True, default=None)
    data = JSON(default="{}")
    dedupe_key = Varchar(length=200, null=True, default=None, unique=True)
    created_at = Timestamptz(index=True)
    dispatched_at = Timestamptz(null=True, default=None, index=True)
