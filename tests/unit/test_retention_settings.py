"""Retention settings: the defaults are the API's promises, and nothing may promise less."""

from __future__ import annotations

import pytest

from runtime.settings import Settings


def test_the_default_windows_are_the_documented_ones():
    settings = Settings.from_env({})
    assert (
        settings.retention_idempotency_hours,
        settings.retention_inbound_days,
        settings.retention_operations_days,
        settings.retention_webhooks_days,
        settings.retention_batch_size,
    ) == (24, 7, 90, 30, 2000)


def test_longer_windows_and_other_batch_sizes_are_read_from_the_environment():
    settings = Settings.from_env(
        {
            "TENURE_RETENTION_IDEMPOTENCY_HOURS": "48",
            "TENURE_RETENTION_INBOUND_DAYS": "14",
            "TENURE_RETENTION_OPERATIONS_DAYS": "365",
            "TENURE_RETENTION_WEBHOOKS_DAYS": "7",
            "TENURE_RETENTION_BATCH_SIZE": "500",
        }
    )
    assert (
        settings.retention_idempotency_hours,
        settings.retention_inbound_days,
        settings.retention_operations_days,
        settings.retention_webhooks_days,
        settings.retention_batch_size,
    ) == (48, 14, 365, 7, 500)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TENURE_RETENTION_IDEMPOTENCY_HOURS", "23"),
        ("TENURE_RETENTION_INBOUND_DAYS", "6"),
        ("TENURE_RETENTION_OPERATIONS_DAYS", "6"),
        ("TENURE_RETENTION_WEBHOOKS_DAYS", "0"),
        ("TENURE_RETENTION_BATCH_SIZE", "-1"),
    ],
)
def test_a_window_shorter_than_promised_is_refused_naming_the_variable(variable, value):
    with pytest.raises(ValueError, match=variable):
        Settings.from_env({variable: value})
