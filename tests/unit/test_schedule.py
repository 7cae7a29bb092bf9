from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from rules.catalog import DEFAULT_CATALOG
from rules.lifecycle import State
from rules.schedule import (
    daily_run_at_or_after,
    for_product,
    next_state_change,
    next_window_after,
    states_passed,
    tier_ageing_run,
)

DOMAIN = DEFAULT_CATALOG["domain"]
EXPIRY = datetime(2027, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def test_a_new_product_is_due_for_its_first_attempt_31_days_and_reminder_30_days_before_expiry():
    schedule = for_product(DOMAIN, EXPIRY, autorenew=True, now=EXPIRY - 365 * DAY)

    assert schedule.next_autorenew_at == EXPIRY - 31 * DAY
    assert schedule.next_reminder_at == EXPIRY - 30 * DAY
    assert schedule.next_state_at == EXPIRY


def test_without_autorenew_there_is_no_attempt_but_reminders_remain():
    schedule = for_product(DOMAIN, EXPIRY, autorenew=False, now=EXPIRY - 100 * DAY)

    assert schedule.next_autorenew_at is None
    assert schedule.next_reminder_at == EXPIRY - 30 * DAY


def test_switching_autorenew_on_inside_a_window_makes_it_due_now():
    now = EXPIRY - 10 * DAY

    assert for_product(DOMAIN, EXPIRY, autorenew=True, now=now).next_autorenew_at == now


def test_windows_follow_each_other_then_stop():
    assert next_window_after((31, 15, 1), EXPIRY, EXPIRY - 31 * DAY) == EXPIRY - 15 * DAY
    assert next_window_after((31, 15, 1), EXPIRY, EXPIRY - 15 * DAY) == EXPIRY - DAY
    assert next_window_after((31, 15, 1), EXPIRY, EXPIRY - DAY) is None


def test_state_changes_come_at_expiry_then_after_each_period():
    assert next_state_change(DOMAIN, EXPIRY, State.ACTIVE) == EXPIRY
    assert next_state_change(DOMAIN, EXPIRY, State.GRACE) == EXPIRY + 30 * DAY
    assert next_state_change(DOMAIN, EXPIRY, State.REDEMPTION) == EXPIRY + 60 * DAY
    assert next_state_change(DOMAIN, EXPIRY, State.PENDING_DELETE) == EXPIRY + 65 * DAY
    assert next_state_change(DOMAIN, EXPIRY, State.DELETED) is None


def test_a_missed_tick_passes_every_state_in_between():
    assert states_passed(DOMAIN, State.ACTIVE, EXPIRY, EXPIRY + 45 * DAY) == [State.GRACE, State.REDEMPTION]
    assert states_passed(DOMAIN, State.GRACE, EXPIRY, EXPIRY + DAY) == []


@given(days=st.integers(min_value=-400, max_value=400))
def test_the_next_state_change_is_never_in_the_past_of_the_current_state(days):
    now = EXPIRY + days * DAY
    schedule = for_product(DOMAIN, EXPIRY, autorenew=True, now=now)

    assert schedule.next_state_at is None or schedule.next_state_at > now
    assert schedule.next_autorenew_at is None or schedule.next_autorenew_at >= now


def test_a_charge_ages_out_at_the_first_daily_tier_run_a_year_after_it():
    charged = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)

    assert tier_ageing_run(charged, after=charged) == datetime(2028, 1, 11, 3, 17, tzinfo=UTC)
    assert tier_ageing_run(charged.replace(hour=1), after=charged) == datetime(2028, 1, 10, 3, 17, tzinfo=UTC)


def test_an_ageing_run_already_past_is_due_at_the_next_daily_run():
    charged = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)
    later = datetime(2028, 3, 2, 8, 0, tzinfo=UTC)

    assert tier_ageing_run(charged, after=later) == datetime(2028, 3, 3, 3, 17, tzinfo=UTC)


def test_the_daily_run_of_a_moment_at_run_time_is_that_moment():
    run = datetime(2027, 5, 5, 3, 17, tzinfo=UTC)

    assert daily_run_at_or_after(run) == run
    assert daily_run_at_or_after(run + timedelta(seconds=1)) == run + DAY
