"""Products due for a sweep: the production sweeps' lease on the products whose next_*_at has come,
and an organization's next and due instants, for its test clock's walk (the schedule rows:
tables.products.ProductSchedule)."""

from datetime import datetime

from tables import leases
from tables.products import SCHEDULE_COLUMNS, ProductSchedule

LEASE_BATCH = 1000


async def lease_due(column: str, now: datetime, until: datetime, limit: int) -> list[str]:
    """Products whose `column` (a next_*_at) has come, pushed to `until` so no other sweep takes them.

    Reads through the column's index: the cost follows the number due, not the table.
    Sandboxes' products are left to their test clocks.
    """
    due_at = getattr(ProductSchedule, column)
    due = (due_at <= now) & (ProductSchedule.sandbox == False)  # noqa: E712
    taken: list[str] = []
    while len(taken) < limit:
        batch = min(LEASE_BATCH, limit - len(taken))
        leased = await leases.take_due(ProductSchedule, free=due, stamp={due_at: until}, order_by=due_at, limit=batch)
        taken += [r["product"] for r in leased]
        if len(leased) < batch:
            break
    return taken


async def next_due_of(organization_id: str) -> datetime | None:
    """The earliest instant at which one of the organization's products needs a sweep."""
    found = []
    for column in SCHEDULE_COLUMNS:
        due_at = getattr(ProductSchedule, column)
        row = (
            await ProductSchedule.select(due_at)
            .where((ProductSchedule.product.organization == organization_id) & due_at.is_not_null())
            .order_by(due_at)
            .first()
        )
        if row is not None:
            found.append(row[column])
    return min(found, default=None)


async def due_of(organization_id: str, column: str, at: datetime) -> list[str]:
    """The organization's products whose `column` (a next_*_at) has come at `at`, earliest first."""
    due_at = getattr(ProductSchedule, column)
    rows = (
        await ProductSchedule.select(ProductSchedule.product)
        .where((ProductSchedule.product.organization == organization_id) & (due_at <= at))
        .order_by(due_at)
        .order_by(ProductSchedule.product)
    )
    return [r["product"] for r in rows]
