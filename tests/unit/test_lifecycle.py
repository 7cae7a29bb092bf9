from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.catalog import DEFAULT_CATALOG
from rules.errors import ExpiryMismatch, InvalidTerm, NotRenewable
from rules.lifecycle import (
    STATE_ORDER,
    Quote,
    State,
    add_years,
    check_term,
    due_attempt,
    due_reminder,
    purchase_quote,
    renewal_quote,
    state_at,
)
from rules.money import Money
from rules.pricing import DEFAULT_TIERS

DOMAIN = DEFAULT_CATALOG["domain"]
TIER_A, TIER_B = DEFAULT_TIERS[0], DEFAULT_TIERS[1]
EXPIRY = datetime(2030, 6, 15, 12, 0, tzinfo=UTC)

moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 12, 31), timezones=st.just(UTC))


def days(n):
    return timedelta(days=n)


def renew(years=1, now=EXPIRY - days(10), expires_at=EXPIRY, guard=None, tier=TIER_A):
    return renewal_quote(DOMAIN, years, tier, expires_at, expires_at if guard is None else guard, now)


# add_years


def test_add_years_keeps_date_and_time():
    moment = datetime(2024, 3, 10, 8, 30, 15, tzinfo=UTC)

    assert add_years(moment, 2) == datetime(2026, 3, 10, 8, 30, 15, tzinfo=UTC)


def test_feb_29_becomes_feb_28_in_a_common_year():
    assert add_years(datetime(2024, 2, 29, tzinfo=UTC), 1) == datetime(2025, 2, 28, tzinfo=UTC)


def test_feb_29_stays_feb_29_in_a_leap_year():
    assert add_years(datetime(2024, 2, 29, tzinfo=UTC), 4) == datetime(2028, 2, 29, tzinfo=UTC)


def test_feb_29_follows_the_century_rule():
    assert add_years(datetime(2096, 2, 29, tzinfo=UTC), 4).day == 28  # 2100 is not leap
    assert add_years(datetime(1996, 2, 29, tzinfo=UTC), 4).day == 29  # 2000 is


def test_add_years_keeps_the_timezone():
    moment = datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=2)))

    assert add_years(moment, 1).utcoffset() == timedelta(hours=2)


@given(moments, st.integers(min_value=0, max_value=50))
def test_add_years_moves_only_the_year(moment, years):
    result = add_years(moment, years)

    assert result.year == moment.year + years
    assert (result.month, result.time()) == (moment.month, moment.time())
    assert result.day == moment.day or (moment.month, moment.day, result.day) == (2, 29, 28)


@given(moments, moments, st.integers(min_value=1, max_value=10))
def test_add_years_preserves_order(first, second, years):
    early, late = sorted((first, second))

    assert add_years(early, years) <= add_years(late, years)
    assert add_years(early, years) > early


@given(moments, st.integers(min_value=1, max_value=10))
def test_a_year_is_365_or_366_days(moment, years):
    span = add_years(moment, years) - moment

    assert 365 * years <= span.days <= 366 * years


# state_at


@pytest.mark.parametrize(
    ("offset", "state"),
    [
        (-days(400), State.ACTIVE),
        (-timedelta(microseconds=1), State.ACTIVE),
        (timedelta(0), State.GRACE),
        (days(30) - timedelta(seconds=1), State.GRACE),
        (days(30), State.REDEMPTION),
        (days(60) - timedelta(seconds=1), State.REDEMPTION),
        (days(60), State.PENDING_DELETE),
        (days(65) - timedelta(seconds=1), State.PENDING_DELETE),
        (days(65), State.DELETED),
        (days(4000), State.DELETED),
    ],
)
def test_state_follows_the_periods_after_expiry(offset, state):
    assert state_at(DOMAIN, EXPIRY, EXPIRY + offset) is state


def test_state_uses_the_catalog_periods():
    quick = DOMAIN.__class__("x", Money.eur(1), Money.eur(1), grace_days=1, redemption_days=0, pending_delete_days=2)

    assert state_at(quick, EXPIRY, EXPIRY + days(1)) is State.PENDING_DELETE
    assert state_at(quick, EXPIRY, EXPIRY + days(3)) is State.DELETED


def test_states_compare_across_timezones_as_instants():
    paris = timezone(timedelta(hours=2))

    assert state_at(DOMAIN, EXPIRY, EXPIRY.astimezone(paris)) is State.GRACE


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        state_at(DOMAIN, EXPIRY, datetime(2030, 1, 1))


def test_state_order_is_the_lifecycle_order():
    assert STATE_ORDER == (
        State.ACTIVE,
        State.GRACE,
        State.REDEMPTION,
        State.PENDING_DELETE,
        State.DELETED,
    )
    assert State.PENDING_DELETE == "pending_delete"


@given(moments, moments)
def test_state_never_goes_backwards_as_time_passes(first, second):
    early, late = sorted((first, second))

    before = STATE_ORDER.index(state_at(DOMAIN, EXPIRY, early))
    after = STATE_ORDER.index(state_at(DOMAIN, EXPIRY, late))

    assert before <= after


# check_term


@pytest.mark.parametrize("years", [1, 5, 10])
def test_term_within_one_to_ten_years_is_accepted(years):
    check_term(DOMAIN, years)


@pytest.mark.parametrize("years", [0, -1, 11, 1.0, True, "2", None])
def test_term_outside_one_to_ten_years_is_refused(years):
    with pytest.raises(InvalidTerm, match="years must be between 1 and 10"):
        check_term(DOMAIN, years)


# purchase_quote


def test_purchase_expires_whole_years_from_now_at_tier_price():
    now = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)

    quote = purchase_quote(DOMAIN, 2, TIER_B, now)

    assert quote == Quote(
        expires_at=datetime(2027, 5, 1, 9, 0, tzinfo=UTC),
        price=Money.eur(2700),
        restore_fee=Money.eur(0),
        state=State.ACTIVE,
    )
    assert quote.total == Money.eur(2700)


def test_purchase_of_too_many_years_is_refused():
    with pytest.raises(InvalidTerm):
        purchase_quote(DOMAIN, 11, TIER_A, EXPIRY)


# renewal_quote


def test_renewal_adds_years_to_the_current_expiry_not_to_now():
    quote = renew(years=2, now=EXPIRY - days(100))

    assert quote.expires_at == datetime(2032, 6, 15, 12, 0, tzinfo=UTC)
    assert quote.price == Money.eur(3000)
    assert quote.state is State.ACTIVE


def test_renewal_with_a_stale_guard_says_which_expiry_to_send():
    with pytest.raises(ExpiryMismatch, match="2030-06-15T12:00:00Z"):
        renew(guard=EXPIRY - timedelta(seconds=1))


def test_renewal_with_a_naive_guard_is_a_mismatch_not_a_crash():
    with pytest.raises(ExpiryMismatch, match="2030-06-15T12:00:00Z"):
        renew(guard=EXPIRY.replace(tzinfo=None))


def test_renewal_guard_is_compared_as_an_instant():
    same_instant = EXPIRY.astimezone(timezone(timedelta(hours=-5)))

    quote = renew(guard=same_instant)

    assert quote.expires_at == add_years(EXPIRY, 1)


def test_replayed_renewal_fails_on_the_guard():
    first = renew()

    with pytest.raises(ExpiryMismatch):
        renew(expires_at=first.expires_at, guard=EXPIRY)


def test_renewal_in_grace_costs_the_normal_price():
    quote = renew(now=EXPIRY + days(10), tier=TIER_B)

    assert quote.state is State.GRACE
    assert quote.restore_fee == Money.eur(0)
    assert quote.total == Money.eur(1350)


def test_renewal_in_redemption_adds_the_undiscounted_restore_fee():
    quote = renew(now=EXPIRY + days(40), tier=TIER_B)

    assert quote.state is State.REDEMPTION
    assert quote.price == Money.eur(1350)
    assert quote.restore_fee == Money.eur(8000)
    assert quote.total == Money.eur(9350)


@pytest.mark.parametrize("after_expiry", [days(60), days(64), days(65), days(900)])
def test_product_past_redemption_cannot_be_renewed(after_expiry):
    with pytest.raises(NotRenewable):
        renew(now=EXPIRY + after_expiry)


def test_renewal_term_is_checked():
    with pytest.raises(InvalidTerm, match="years must be between 1 and 10"):
        renew(years=0)


def test_renewal_cannot_put_expiry_more_than_ten_years_ahead():
    now = EXPIRY - days(400)  # expiry is a bit over a year ahead

    with pytest.raises(InvalidTerm, match="at most 8 years"):
        renew(years=10, now=now)


def test_renewal_up_to_exactly_ten_years_ahead_is_allowed():
    now = add_years(EXPIRY, -1)

    quote = renew(years=9, now=now)

    assert quote.expires_at == add_years(now, 10)


def test_renewal_when_already_near_the_limit_says_to_wait():
    now = add_years(EXPIRY, -9) - days(1)  # expiry is just over 9 years ahead

    with pytest.raises(InvalidTerm, match="cannot be renewed yet"):
        renew(years=1, now=now)


# due_attempt / due_reminder


@pytest.mark.parametrize(
    ("before_expiry", "attempt"),
    [
        (days(40), None),
        (days(31) + timedelta(seconds=1), None),
        (days(31), 31),
        (days(20), 31),
        (days(15), 15),
        (days(2), 15),
        (days(1), 1),
        (timedelta(minutes=1), 1),
        (timedelta(0), None),
        (-days(3), None),
    ],
)
def test_autorenew_attempt_window_open_at_now(before_expiry, attempt):
    assert due_attempt(DOMAIN, EXPIRY, EXPIRY - before_expiry) == attempt


@pytest.mark.parametrize(
    ("before_expiry", "reminder"),
    [
        (days(31), None),
        (days(30), 30),
        (days(8), 30),
        (days(7), 7),
        (days(1), 1),
        (-days(1), None),
    ],
)
def test_reminder_window_open_at_now(before_expiry, reminder):
    assert due_reminder(DOMAIN, EXPIRY, EXPIRY - before_expiry) == reminder


@given(
    st.timedeltas(min_value=timedelta(0), max_value=days(60)),
    st.timedeltas(min_value=timedelta(0), max_value=days(60)),
)
def test_attempt_windows_only_move_towards_expiry(first, second):
    earlier, later = EXPIRY - max(first, second), EXPIRY - min(first, second)

    before, after = due_attempt(DOMAIN, EXPIRY, earlier), due_attempt(DOMAIN, EXPIRY, later)

    assert before is None or before in DOMAIN.autorenew_days_before
    if before is not None and after is not None:
        assert after <= before
    if before is not None and later < EXPIRY:
        assert after is not None


@given(st.timedeltas(min_value=timedelta(0), max_value=days(31)))
def test_open_attempt_window_started_at_or_before_now(before_expiry):
    now = EXPIRY - before_expiry

    attempt = due_attempt(DOMAIN, EXPIRY, now)

    if attempt is not None:
        assert EXPIRY - days(attempt) <= now < EXPIRY
        assert all(not EXPIRY - days(d) <= now for d in DOMAIN.autorenew_days_before if d < attempt)
