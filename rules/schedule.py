"""When a product next needs the sweeps: an autorenew attempt, a reminder, a state change.

Each product carries these three instants (indexed), so a sweep reads exactly the
products that are due instead of scanning every product near its expiry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as TimeOfDay  # `time(...)` would read as a clock call

from rules.catalog import ProductKind
from rules.lifecycle import State, add_years, due_attempt, due_reminder, state_at


@dataclass(frozen=True)
class Schedule:
    next_autorenew_at: datetime | None
    next_reminder_at: datetime | None
    next_state_at: datetime | None

    def as_columns(self) -> dict[str, datetime | None]:
        return {
            "next_autorenew_at": self.next_autorenew_at,
            "next_reminder_at": self.next_reminder_at,
            "next_state_at": self.next_state_at,
        }


def next_window_after(days_before: tuple[int, ...], expires_at: datetime, after: datetime) -> datetime | None:
    """The first window (N days before expiry) that opens strictly after `after`."""
    starts = [expires_at - timedelta(days=d) for d in days_before]
    return min((start for start in starts if start > after), default=None)


def next_state_change(kind: ProductKind, expires_at: datetime, state: State) -> datetime | None:
    """When a product in `state` moves on: expiry, then after grace, redemption, pending delete."""
    grace_ends = expires_at + timedelta(days=kind.grace_days)
    redemption_ends = grace_ends + timedelta(days=kind.redemption_days)
    return {
        State.ACTIVE: expires_at,
        State.GRACE: grace_ends,
        State.REDEMPTION: redemption_ends,
        State.PENDING_DELETE: redemption_ends + timedelta(days=kind.pending_delete_days),
        State.DELETED: None,
    }[state]


def for_product(kind: ProductKind, expires_at: datetime, autorenew: bool, now: datetime) -> Schedule:
    """A fresh schedule (after a purchase, a renewal, or autorenew switched on or off).

    A window already open now (say, autorenew switched on 10 days before expiry) is due now.
    """
    state = state_at(kind, expires_at, now)
    autorenew_at = None
    if autorenew:
        autorenew_at = (
            now
            if due_attempt(kind, expires_at, now)
            else next_window_after(kind.autorenew_days_before, expires_at, now)
        )
    reminder_at = (
        now if due_reminder(kind, expires_at, now) else next_window_after(kind.reminder_days_before, expires_at, now)
    )
    return Schedule(autorenew_at, reminder_at, next_state_change(kind, expires_at, state))


def states_passed(kind: ProductKind, stored: State, expires_at: datetime, now: datetime) -> list[State]:
    """The states a product entered since `stored`, in order (a missed tick may skip several)."""
    current = state_at(kind, expires_at, now)
    order = list(State)
    if order.index(current) <= order.index(stored):
        return []
    return order[order.index(stored) + 1 : order.index(current) + 1]


# The daily tier recalculation (worker.scheduler) runs at this time of day, UTC.
TIER_RUN_TIME = TimeOfDay(3, 17)


def daily_run_at_or_after(moment: datetime, run_time: TimeOfDay = TIER_RUN_TIME) -> datetime:
    """The first daily run (at `run_time`, in `moment`'s time zone) at or after `moment`."""
    run = datetime.combine(moment.date(), run_time, tzinfo=moment.tzinfo)
    return run if run >= moment else run + timedelta(days=1)


def tier_ageing_run(oldest_charge_at: datetime, after: datetime, run_time: TimeOfDay = TIER_RUN_TIME) -> datetime:
    """The daily run at which the oldest charge still counted in the 12-month volume has left it
    (the only moment, between charges, at which a payer's tier can move), strictly after `after`."""
    run = daily_run_at_or_after(add_years(oldest_charge_at, 1), run_time)
    return run if run > after else daily_run_at_or_after(after + timedelta(microseconds=1), run_time)
