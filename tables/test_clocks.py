"""Test clocks: the time of each sandbox organization, which moves only when asked.

A sandbox organization (organizations.sandbox) has one row here from its creation: its
products are bought, renewed, reminded and aged at `now_at`, never at the wall clock, and
the production scheduler leaves them alone. An advance (worker.actors.test_clocks) moves
`now_at` forward through every instant at which something was due.
"""

from __future__ import annotations

from datetime import datetime

from piccolo.columns import Timestamptz, Varchar
from piccolo.columns.combination import WhereRaw
from piccolo.table import Table

from runtime.clock import clock
from tables.references import ORGANIZATION, reference


class TestClock(Table, tablename="test_clocks"):
    __test__ = False  # not a pytest test class, whatever its name

    organization_id = reference(ORGANIZATION, primary_key=True, help_text="The sandbox organization.")
    now_at = Timestamptz(help_text="The organization's time: where its last advance stopped.")
    advancing_to = Timestamptz(
        null=True, default=None, help_text="Where the advance under way goes; null when none runs."
    )
    operation_id = Varchar(
        length=40, null=True, default=None, help_text="The test_clock operation of the advance under way."
    )
    updated_at = Timestamptz()


# Organizations known not to be sandboxes (the flag never changes): their time is the clock's,
# read without a query. Bounded: cleared when full, then relearnt.
_PRODUCTION: set[str] = set()
_PRODUCTION_LIMIT = 100_000


async def create(organization_id: str, now: datetime) -> dict:
    row = {
        "organization_id": organization_id,
        "now_at": now,
        "advancing_to": None,
        "operation_id": None,
        "updated_at": now,
    }
    await TestClock.insert(TestClock(**row))
    return row


async def get(organization_id: str) -> dict | None:
    return await TestClock.select().where(TestClock.organization_id == organization_id).first()


async def now_for(organization_id: str | None) -> datetime:
    """The time an organization's products live at: its test clock's, else the wall clock's."""
    if organization_id is None or organization_id in _PRODUCTION:
        return clock.now()
    row = await TestClock.select(TestClock.now_at).where(TestClock.organization_id == organization_id).first()
    if row is None:
        if len(_PRODUCTION) >= _PRODUCTION_LIMIT:
            _PRODUCTION.clear()
        _PRODUCTION.add(organization_id)
        return clock.now()
    return row["now_at"]


async def sandboxes(organization_ids: list[str]) -> set[str]:
    """Those of `organization_ids` that are sandboxes."""
    unknown = [o for o in set(organization_ids) if o not in _PRODUCTION]
    if not unknown:
        return set()
    rows = await TestClock.select(TestClock.organization_id).where(TestClock.organization_id.is_in(unknown))
    return {r["organization_id"] for r in rows}


async def start_advance(organization_id: str, advance_to: datetime, now: datetime) -> bool:
    """Marks an advance as under way, unless one already is or `advance_to` is not ahead."""
    taken = (
        await TestClock.update({TestClock.advancing_to: advance_to, TestClock.updated_at: now})
        .where(
            (TestClock.organization_id == organization_id)
            & TestClock.advancing_to.is_null()
            & (TestClock.now_at < advance_to)
        )
        .returning(TestClock.organization_id)
    )
    return bool(taken)


async def attach(organization_id: str, operation_id: str) -> None:
    """Names the operation of the advance under way (none if it is already done)."""
    await TestClock.update({TestClock.operation_id: operation_id}).where(
        (TestClock.organization_id == organization_id) & TestClock.advancing_to.is_not_null()
    )


async def abandon(organization_id: str) -> None:
    """An advance whose operation could not be recorded: the clock is free again."""
    await TestClock.update({TestClock.advancing_to: None, TestClock.operation_id: None}).where(
        TestClock.organization_id == organization_id
    )


async def move(organization_id: str, instant: datetime, now: datetime) -> None:
    """The clock reached `instant` (never backwards)."""
    await TestClock.update({TestClock.now_at: instant, TestClock.updated_at: now}).where(
        (TestClock.organization_id == organization_id) & (TestClock.now_at < instant)
    )


async def finish_advance(organization_id: str, advance_to: datetime, now: datetime) -> None:
    """The advance to `advance_to` is done: the clock stands there and is free again."""
    await move(organization_id, advance_to, now)
    await TestClock.update(
        {TestClock.advancing_to: None, TestClock.operation_id: None, TestClock.updated_at: now}
    ).where((TestClock.organization_id == organization_id) & (TestClock.advancing_to == advance_to))


async def advancing() -> list[str]:
    """Sandbox organizations whose clock is moving: their events are delivered by the advance."""
    rows = await TestClock.select(TestClock.organization_id).where(TestClock.advancing_to.is_not_null())
    return [r["organization_id"] for r in rows]


def not_a_sandbox(column: str) -> WhereRaw:
    """`column` (an organization id) is not a sandbox's: for the production scheduler's queries."""
    return WhereRaw(f"{column} NOT IN (SELECT organization_id FROM test_clocks)")
