from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules import webhooks
from rules.errors import InvalidWebhookUrl, UnknownEventType

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_retry_schedule_follows_the_documented_delays_without_jitter():
    delays = [webhooks.next_attempt_at(n, NOW, jitter=0) - NOW for n in range(8)]

    assert delays == [
        timedelta(0),
        timedelta(seconds=5),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=5),
        timedelta(hours=10),
        timedelta(hours=10),
    ]


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


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "delivered"),
        (204, "delivered"),
        (410, "gone"),
        (500, "retry"),
        (404, "retry"),
        (301, "retry"),
        (None, "retry"),
    ],
)
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


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "example.com/hook", "https://", "https://u:p@example.com/", "http://example.com:99999/"],
)
def test_bad_urls_are_refused(url):
    with pytest.raises(InvalidWebhookUrl):
        webhooks.check_url(url)


def test_check_url_gives_the_host():
    assert webhooks.check_url("https://hooks.example.com:8443/in") == "hooks.example.com"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "172.16.5.4",
        "169.254.169.254",
        "0.0.0.0",
        "255.255.255.255",
        "100.64.0.1",
        "100.100.100.200",
        "100.127.255.254",  # shared address space (a cloud metadata service)
        "192.0.2.1",
        "198.18.0.1",
        "240.0.0.1",
        "224.0.0.1",
        "239.255.255.250",
        "::1",
        "::",
        "fd00::1",
        "fe80::1",
        "fe80::1%eth0",
        "fec0::1",
        "ff02::1",
        "2001:db8::1",
        "2002:7f00::1",
        "2002:a9fe:a9fe::1",
        "2002:5db8:d822::1",  # 6to4, whatever IPv4 it embeds
        "2001::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "64:ff9b::7f00:1",
        "64:ff9b::5db8:d822",
        "64:ff9b:1::a00:1",  # NAT64, well-known and local-use
        "::ffff:127.0.0.1",
        "::ffff:100.100.100.200",
        "::ffff:10.0.0.1",  # IPv4-mapped
        "::7f00:1",
        "::a9fe:a9fe",
        "::5db8:d822",  # IPv4-compatible (deprecated)
    ],
)
def test_addresses_outside_the_public_internet_are_refused(address):
    assert not webhooks.is_public(address)


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "100.63.255.255",
        "100.128.0.1",
        "2606:4700::1111",
        "2a00:1450:4007:80e::200e",
        "::ffff:93.184.216.34",
    ],
)
def test_globally_routable_addresses_are_allowed(address):
    assert webhooks.is_public(address)


def test_entering_grace_emits_product_expired_and_any_other_move_a_state_change():
    from rules.lifecycle import State
    from rules.webhooks import EVENT_TYPES, state_change_event

    assert state_change_event(State.GRACE) == "product.expired"
    for state in (State.REDEMPTION, State.PENDING_DELETE, State.DELETED):
        assert state_change_event(state) == "product.state_changed"
    assert {state_change_event(state) for state in State} <= EVENT_TYPES
