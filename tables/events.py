"""Outbound events, written in the transaction of the change they describe."""

from datetime import datetime

from msgspec import Struct
from piccolo.columns import JSON, Timestamptz, Varchar
from piccolo.table import Table

from runtime.ids import new_id
from tables.engine import insert_unless_taken
from tables.event_payloads import stored
from tables.references import ORGANIZATION, reference


class Event(Table, tablename="events"):
    id = Varchar(length=40, primary_key=True)
    type = Varchar(length=40, index=True, help_text="A catalogued event type: product.purchased, operation.failed, ...")
    organization_id = reference(ORGANIZATION, help_text="The organization told (never a client).")
    product_id = Varchar(length=40, null=True, default=None)
    operation_id = Varchar(length=40, null=True, default=None, index=True)
    data = JSON(default="{}", help_text="The payload sent to endpoints (tables.event_payloads).")
    dedupe_key = Varchar(
        length=200, null=True, default=None, unique=True, help_text="Set for an event that must be recorded once only."
    )
    created_at = Timestamptz(index=True)
    dispatched_at = Timestamptz(
        null=True, default=None, index=True, help_text="When its deliveries were made; null: not fanned out yet."
    )


# --- queries -----------------------------------------------------------------


async def record(
    type: str,
    organization_id: str,
    now: datetime,
    *,
    data: Struct | dict | None = None,
    product_id: str | None = None,
    operation_id: str | None = None,
    dedupe_key: str | None = None,
) -> bool:
    """Writes one event in the caller's transaction; False if `dedupe_key` was already used.
    `data` is the type's Struct (tables/event_payloads.py), as webhooks post it; a dict only
    for the synthetic events of tests and benchmarks."""
    inserted = await insert_unless_taken(
        Event(
            id=new_id("evt"),
            type=type,
            organization_id=organization_id,
            product_id=product_id,
            operation_id=operation_id,
            data=stored(data) if data is not None else {},
            dedupe_key=dedupe_key,
            created_at=now,
        ),
        Event.dedupe_key,
    )
    return bool(inserted)


async def mark_dispatched(operation_ids: list[str], now: datetime) -> None:
    """Nothing to deliver (no endpoint): the operations' events count as fanned out."""
    await Event.update({Event.dispatched_at: now}).where(
        Event.operation_id.is_in(operation_ids) & Event.dispatched_at.is_null()
    )


async def of(organization_id: str, type: str | None = None) -> list[dict]:
    query = Event.select().where(Event.organization_id == organization_id)
    if type:
        query = query.where(Event.type == type)
    return await query.order_by(Event.id).output(load_json=True)


async def count(type: str) -> int:
    return await Event.count().where(Event.type == type)


async def feed(
    organization_id: str, after: str | None, limit: int, *, before: str | None = None, hidden: tuple[str, ...] = ()
) -> list[dict]:
    """The organization's events in id order (the order they were made), after `after` and,
    when given, before `before` (the settle bound)."""
    query = Event.select(
        Event.id, Event.type, Event.organization_id, Event.product_id, Event.operation_id, Event.data, Event.created_at
    ).where(Event.organization_id == organization_id)
    if after is not None:
        query = query.where(Event.id > after)
    if before is not None:
        query = query.where(Event.id < before)
    if hidden:
        query = query.where(Event.type.not_in(list(hidden)))
    return await query.order_by(Event.id).limit(limit).output(load_json=True)
