"""Rate limit settings: read from the environment, checked when the app is built, and where
the windows are counted."""

from __future__ import annotations

import pytest

from runtime.settings import Settings
from web.ratelimit import check_settings, limit_items, storage_url


def test_limits_come_from_the_environment_with_defaults():
    default = Settings.from_env({})
    configured = Settings.from_env(
        {
            "TENURE_RATE_LIMIT_URL": "redis://limits.internal:6379/2",
            "TENURE_RATE_LIMIT_PER_KEY": "50/second",
            "TENURE_RATE_LIMIT_AUTH_FAILURES": "5 per 10 minutes",
            "TENURE_RATE_LIMIT_SIGNUPS": "off",
            "TENURE_RATE_LIMIT_CLAIMS": "3/hour",
            "TENURE_OPS_SESSION_HOURS": "2",
        }
    )

    assert (
        default.rate_limit_per_key,
        default.rate_limit_auth_failures,
        default.rate_limit_signups,
        default.rate_limit_claims,
        default.ops_session_hours,
    ) == ("1000/minute", "20/minute", "20/hour", "10/hour", 12)
    items = limit_items(configured)
    assert (items["per_key"].amount, items["per_key"].get_expiry()) == (50, 1)
    assert (items["auth_failures"].amount, items["auth_failures"].get_expiry()) == (5, 600)
    assert items["signups"] is None
    assert configured.ops_session_hours == 2
    assert storage_url(configured) == "redis://limits.internal:6379/2"


@pytest.mark.parametrize(
    "settings, where",
    [
        (Settings(), "memory://"),
        (Settings(broker_url="redis://broker:6379/0"), "redis://broker:6379/0"),
        (Settings(broker_url="amqp://rabbit:5672/"), "memory://"),
        (Settings(broker_url="amqp://rabbit:5672/", rate_limit_url="redis://limits:6379/1"), "redis://limits:6379/1"),
        (Settings(broker_url="redis://broker:6379/0", rate_limit_url="memory://"), "memory://"),
    ],
    ids=["embedded", "redis-broker", "rabbitmq-broker", "rabbitmq-and-a-redis", "memory-forced"],
)
def test_the_windows_live_in_redis_when_there_is_one_else_in_memory(settings, where):
    assert storage_url(settings) == where


@pytest.mark.parametrize(
    "field, value, named",
    [
        ("rate_limit_claims", "ten an hour", "TENURE_RATE_LIMIT_CLAIMS"),
        ("rate_limit_auth_failures", "", "TENURE_RATE_LIMIT_AUTH_FAILURES"),
        ("rate_limit_url", "memcached://cache:11211", "TENURE_RATE_LIMIT_URL"),
    ],
)
def test_a_setting_that_cannot_work_is_refused_naming_it(field, value, named):
    with pytest.raises(ValueError, match=named):
        check_settings(Settings(**{field: value}))
