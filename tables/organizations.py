"""Organizations (plain or reseller), their teams with permissions, and memberships."""

from piccolo.columns import Boolean, ForeignKey, Text, Timestamptz, Varchar
from piccolo.table import Table

from tables.accounts import Account


class Organization(Table, tablename="organizations"):
    id = Varchar(length=40, primary_key=True)
    name = Varchar(length=200)
    is_reseller = Boolean(default=False)
    currency = Varchar(length=3, default="EUR")
    created_at = Timestamptz()


class Team(Table, tablename="teams"):
    id = Varchar(length=40, primary_key=True)
    organization = ForeignKey(references=Organization, index=True)
    name = Varchar(length=100)
    name_key = Varchar(length=160, unique=True, help_text="organization id + lower-cased name")
    permissions = Text(default="", help_text="Space-separated permission names.")
    is_owner = Boolean(default=False, help_text="The Owner team: all permissions, never deleted.")
    created_at = Timestamptz()


class Membership(Table, tablename="memberships"):
    id = Varchar(length=40, primary_key=True)
    team = ForeignKey(references=Team, index=True)
    account = ForeignKey(references=Account, index=True)
    organization = ForeignKey(references=Organization, index=True)
    member_key = Varchar(length=100, unique=True, help_text="team id + account id")
    created_at = Timestamptz()
