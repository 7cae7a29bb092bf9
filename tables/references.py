"""Columns that name another table's row, as foreign keys: the database refuses a row whose
target is missing (ON DELETE RESTRICT: a target is never deleted while something names it).

The targets are named lazily (by module path), so that a table module may point at a table
whose module imports it in turn (organizations opens a balance row with the ledger).
"""

from __future__ import annotations

from piccolo.columns import ForeignKey, OnDelete
from piccolo.columns.reference import LazyTableReference

ORGANIZATION = LazyTableReference("Organization", module_path="tables.organizations")
EVENT = LazyTableReference("Event", module_path="tables.events")
DELIVERY = LazyTableReference("Delivery", module_path="tables.webhooks")


def reference(
    target: LazyTableReference, *, help_text: str, null: bool = False, primary_key: bool = False, index: bool = True
) -> ForeignKey:
    """A foreign key to `target`'s id (a null one names nothing, when `null`)."""
    return ForeignKey(
        references=target,
        null=null,
        default=None,
        on_delete=OnDelete.restrict,
        primary_key=primary_key,
        index=index and not primary_key,
        help_text=help_text,
    )
