"""Product lifecycle: states over time, terms, and quotes for buying and renewing."""

from __future__ import annotations

import calendar
import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rules.catalog import ProductKind
from rules.errors import ExpiryMismatch, InvalidTerm, NotRenewable
from rules.money import Money
from rules.pricing import Tier, price


class State(enum.StrEnum):
    """Where a product is in its life, as the API spells it."""

    ACTIVE = "active"
    GRACE = "grace"
    REDEMPTION = "redemption"
    PENDING_DELETE = "pending_delete"
    DELETED = "deleted"


# StrEnum compares alphabetically; this is the order a product moves through.
STATE_ORDER: tuple[State, ...] = tuple(State)

_NOT_RENEWABLE = frozenset({State.PENDING_DELETE, State.DELETED})


def _require_aware(moment: datetime, name: str) -> None:
    # Naive datetimes would silently mean local time; tenure's time is UTC.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def rfc3339(moment: datetime) -> str:
    """`moment` as RFC 3339 UTC text, as the API writes times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def add_years(moment: datetime, years: int) -> datetime:
    """`moment` moved by calendar years; Feb 29 becomes Feb 28 in a common year."""
    target = moment.year + years
    if moment.month == 2 and moment.day == 29:
        if not calendar.isleap(target):
            return moment.replace(year=target, day=28)
    return moment.replace(year=target)


def state_at(kind: ProductKind, expires_at: datetime, now: datetime) -> State:
    """The state of a product of `kind` expiring at `expires_at`, seen at `now`."""
    _require_aware(expires_at, "expires_at")
    _require_aware(now, "now")
    boundary = expires_at
    for state, days in (
        (State.ACTIVE, 0),
        (State.GRACE, kind.grace_days),
        (State.REDEMPTION, kind.redemption_days),
        (State.PENDING_DELETE, kind.pending_delete_days),
    ):
        boundary += timedelta(days=days)
        if now < boundary:
            return state
    return State.DELETED


def check_term(kind: ProductKind, years: int) -> None:
    """InvalidTerm unless `years` is a whole number within the kind's term range."""
    in_range = isinstance(years, int) and not isinstance(years, bool) and kind.min_years <= years <= kind.max_years
    if not in_range:
        raise InvalidTerm(f"years must be between {kind.min_years} and {kind.max_years}, got {years!r}")


@dataclass(frozen=True)
class Quote:
    """What an operation costs and the expiry it leads to.

    `state` is the product's state at quote time (what set the fee); a new
    purchase starts active.
    """

    expires_at: datetime
    price: Money
    restore_fee: Money
    state: State

    @property
    def total(self) -> Money:
        return self.price + self.restore_fee


def purchase_quote(kind: ProductKind, years: int, tier: Tier, now: datetime) -> Quote:
    """Quote for buying `years` of a new product at `now`."""
    _require_aware(now, "now")
    check_term(kind, years)
    return Quote(
        expires_at=add_years(now, years),
        price=price(kind.yearly_price, years, tier),
        restore_fee=Money.zero(kind.yearly_price.currency),
        state=State.ACTIVE,
    )


def check_guard(expires_at: datetime, guard_expires_at: datetime) -> None:
    """ExpiryMismatch unless the renewal's guard is the product's current expiry."""
    _require_aware(expires_at, "expires_at")
    # The guard makes a replayed renewal fail instead of adding years twice (EPP curExpDate).
    # It is user input: a naive guard never equals an aware expiry, so it fails here too.
    if guard_expires_at != expires_at:
        raise ExpiryMismatch(
            f"current_expires_at does not match the product's expiry; send current_expires_at {rfc3339(expires_at)}"
        )


def renewal_quote(
    kind: ProductKind,
    years: int,
    tier: Tier,
    expires_at: datetime,
    guard_expires_at: datetime,
    now: datetime,
) -> Quote:
    """Quote for renewing by `years`, guarded by the expiry the caller last saw."""
    check_guard(expires_at, guard_expires_at)
    state = state_at(kind, expires_at, now)
    if state in _NOT_RENEWABLE:
        raise NotRenewable(
            f"the product is {state} and can no longer be renewed; it can be bought again once it is deleted"
        )
    check_term(kind, years)
    new_expiry = add_years(expires_at, years)
    limit = add_years(now, kind.max_years_ahead)
    if new_expiry > limit:
        allowed = max(
            (y for y in range(kind.min_years, years) if add_years(expires_at, y) <= limit),
            default=None,
        )
        advice = f"renew for at most {allowed} years now" if allowed else "it cannot be renewed yet; try again later"
        raise InvalidTerm(
            f"renewing {years} years would put the expiry more than {kind.max_years_ahead} years ahead; {advice}"
        )
    restore_fee = kind.restore_fee if state is State.REDEMPTION else Money.zero(kind.restore_fee.currency)
    return Quote(
        expires_at=new_expiry,
        price=price(kind.yearly_price, years, tier),
        restore_fee=restore_fee,
        state=state,
    )


def _open_window(days_before: tuple[int, ...], expires_at: datetime, now: datetime) -> int | None:
    _require_aware(expires_at, "expires_at")
    _require_aware(now, "now")
    if now >= expires_at:
        return None
    opened = [d for d in days_before if now >= expires_at - timedelta(days=d)]
    # The window open now is the most recently opened one: the fewest days before expiry.
    return min(opened, default=None)


def due_attempt(kind: ProductKind, expires_at: datetime, now: datetime) -> int | None:
    """Which autorenew attempt (days before expiry) is open at `now`, if any."""
    return _open_window(kind.autorenew_days_before, expires_at, now)


def due_reminder(kind: ProductKind, expires_at: datetime, now: datetime) -> int | None:
    """Which expiry reminder (days before expiry) is open at `now`, if any."""
    return _open_window(kind.reminder_days_before, expires_at, now)
