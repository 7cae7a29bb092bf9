from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules import webhooks
from rules.errors import InvalidWebhookUrl, UnknownEventType

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_retry_schedule_follows_the_documented_delays_without_jitter():
    delays = [webhooks.next_attempt_at(n, NOW, jitter=0) - NOW for n in range(8)]

    assert delays == [timedelta(0), timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30),
                      timedelta(hours=2), timedelta(hours=5), timedelta(hours=10), timedelta(hours=10)]


def test_after_eight_attempts_the_delivery_has_failed():
    assert webhooks.next_attempt_at(8, NOW, jitter=0) is None


@given(attempts=st.integers(min_value=1, max_value=7), jitter=st.integers(min_value=-500, max_value=500))
def test_jitter_moves_a_retry_by_at_most_ten_percent(attempts, jitter):
    base = webhooks.RETRY_DELAYS[attempts]

    delay = webhooks.next_attempt_at(attempts, NOW, jitter=jitter) - NOW

    assert base * 0.9 - timedelta(microseconds=1) <= delay <= base * 1.1 + timedelta(microseconds=1)


def test_retry_after_pushes_a_retry_later_but_never_earlier_and_is_capped():
    assert webhooks.next_attempt_at(1, NOW, 0, retry_after=timedelta(minutes=1)) == NOW + timedelta(minutes=1)
    assert webhooks.next_attempt_at(2, NOW, 0, retry_after=timedelta(seconds=1)) == NOW + timedelta(minutes=5)
    assert webhooks.next_attempt_at(1, NOW, 0, retry_after=timedelta(days=3)) == NOW + timedelta(hours=10)


@pytest.mark.parametrize(("status", "expected"), [(200, "delivered"), (204, "delivered"), (410, "gone"),
                                                  (500, "retry"), (404, "retry"), (301, "retry"), (None, "retry")])
def test_outcome_of_an_answer(status, expected):
    assert webhooks.outcome(status) == expected


def test_five_days_of_failures_disable_an_endpoint():
    assert not webhooks.should_disable(None, NOW)
    assert not webhooks.should_disable(NOW - timedelta(days=4, hours=23), NOW)
    assert webhooks.should_disable(NOW - timedelta(days=5), NOW)


def test_event_types_must_be_known_and_empty_means_all():
    assert webhooks.validate_event_types([]) == frozenset()
    assert webhooks.matches(frozenset(), "tier.changed")
    assert not webhooks.matches(frozenset({"product.renewed"}), "tier.changed")
    with pytest.raises(UnknownEventType, match="product.bought"):
        webhooks.validate_event_types(["product.bought"])


@pytest.mark.parametrize("url", ["ftp://example.com/x", "example.com/hook", "https://", "https://u:p@example.com/",
                                 "http://example.com:99999/"])
def test_bad_urls_are_refused(url):
    with pytest.raises(InvalidWebhookUrl):
        webhooks.check_url(url)


def test_check_url_gives_the_host():
    assert webhooks.check_url("https://hooks.example.com:8443/in") == "hooks.example.com"


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.5.4", "169.254.1.1",
                                     "::1", "fd00::1", "0.0.0.0", "::ffff:127.0.0.1"])
def test_private_addresses_are_recognised(address):
    assert webhooks.is_private(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1111"])
def test_public_addresses_are_allowed(address):
    assert not webhooks.is_private(address)
