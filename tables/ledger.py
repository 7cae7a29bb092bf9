"""Double-entry ledger, prepaid balances (for atomic checks) and tier state."""

from piccolo.columns import BigInt, Timestamptz, Varchar
from piccolo.table import Table


class LedgerEntry(Table, tablename="ledger_entries"):
    id = Varchar(length=40, primary_key=True)
    txn_id = Varchar(length=60, index=True, help_text="Entries of one transaction sum to zero.")
    book = Varchar(length=20, help_text="prepaid, invoice, revenue or cash")
    organization_id = Varchar(length=40, null=True, default=None, index=True)
    amount = BigInt(help_text="Signed, in minor units.")
    currency = Varchar(length=3)
    operation_id = Varchar(length=40, null=True, default=None)
    created_at = Timestamptz(index=True)


class Balance(Table, tablename="balances"):
    """Prepaid balance per organization, kept equal to the sum of its prepaid entries."""

    organization_id = Varchar(length=40, primary_key=True)
    prepaid = BigInt(default=0)
    currency = Varchar(length=3, default="EUR")


class TierState(Table, tablename="tier_states"):
    organization_id = Varchar(length=40, primary_key=True)
    tier = Varchar(length=1, default="A")
    volume_12m = BigInt(default=0)
    currency = Varchar(length=3, default="EUR")
    computed_at = Timestamptz()
