"""Settings shared by every process, read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

DEFAULT_DATABASE_URL = "sqlite:///tenure.sqlite3"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str = DEFAULT_DATABASE_URL
    broker_url: str | None = None  # None: in-process (embedded) broker
    ops_token: str | None = None
    # Fernet keys, comma-separated: the first encrypts stored webhook secrets, all decrypt.
    # Unset: required on PostgreSQL; on SQLite a key file beside the database is used.
    secret_key: str | None = None
    allow_private_webhook_urls: bool = False
    # Seconds after which an unfinished operation last sent (or started) that long ago is sent again.
    relay_stall_seconds: int = 60
    # An operation whose handler keeps raising ends `failed` (internal_error) after this many
    # attempts, or once it has been tried and is this old, whichever comes first.
    operation_max_attempts: int = 10
    operation_max_age_seconds: int = 3600
    log_level: str = "INFO"
    worker_metrics_port: int = 9191
    # Days a release's claim token stays usable (the reseller can reissue one afterwards).
    claim_days: int = 30
    # Rate limits, in the `limits` notation ("20/minute", "10 per hour"); "off" disables one.
    # Storage: this URL (redis://... or memory://); unset: the broker's Redis, else memory.
    rate_limit_url: str | None = None
    rate_limit_per_key: str = "1000/minute"  # every request made with one API key
    rate_limit_auth_failures: str = "20/minute"  # wrong API keys or ops tokens, per client address
    rate_limit_signups: str = "20/hour"  # POST /v1/accounts, per client address
    rate_limit_claims: str = "10/hour"  # POST /v1/accounts/claim, per client address
    # Seconds a process may keep an API key's account and a member's permissions (0: never):
    # a revocation made in another process takes effect within this bound (tables/access_cache.py).
    auth_cache_seconds: float = 2.0
    # Seconds the events feed holds back its newest events: ids are made before their transaction
    # commits, so an event committing late behind a newer one would otherwise be skipped by a
    # client that already read past it. 0: no wait (one process writing, as in tests).
    event_feed_settle_seconds: float = 2.0
    # Hours a sign-in to the /ops page lasts.
    ops_session_hours: int = 12
    # Retention (the daily job of worker/retention.py). The first two are promises of the
    # HTTP contract, so they cannot go below their defaults.
    retention_idempotency_hours: int = 24  # an Idempotency-Key answers its first operation
    retention_inbound_days: int = 7  # an inbound webhook-id answers its first operation
    retention_operations_days: int = 90  # finished operations, counted from finished_at
    retention_webhooks_days: int = 30  # events and deliveries, after their last attempt
    retention_batch_size: int = 2000  # rows per delete, each batch its own transaction
    # Currencies an organization may choose at creation (each needs a price list in
    # rules/price_list.toml); no conversion happens anywhere.
    currencies: str = "EUR,USD,GBP"

    def __post_init__(self) -> None:
        if self.retention_idempotency_hours < 24:
            raise ValueError(
                "TENURE_RETENTION_IDEMPOTENCY_HOURS must be at least 24 (an Idempotency-Key is honoured for 24 hours)"
            )
        if self.retention_inbound_days < 7:
            raise ValueError(
                "TENURE_RETENTION_INBOUND_DAYS must be at least 7 (an inbound webhook-id is honoured for 7 days)"
            )
        if self.retention_operations_days * 24 < max(
            self.retention_idempotency_hours, self.retention_inbound_days * 24
        ):
            raise ValueError(
                "TENURE_RETENTION_OPERATIONS_DAYS must cover the idempotency and "
                "inbound windows (a replay answers the operation, so it must still exist)"
            )
        if not self.accepted_currencies:
            raise ValueError("TENURE_CURRENCIES must list at least one currency, such as EUR")
        if self.retention_webhooks_days < 1 or self.retention_batch_size < 1:
            raise ValueError("TENURE_RETENTION_WEBHOOKS_DAYS and TENURE_RETENTION_BATCH_SIZE must be at least 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            database_url=env.get("TENURE_DATABASE_URL") or DEFAULT_DATABASE_URL,
            broker_url=env.get("TENURE_BROKER_URL") or None,
            ops_token=env.get("TENURE_OPS_TOKEN") or None,
            secret_key=env.get("TENURE_SECRET_KEY") or None,
            allow_private_webhook_urls=env.get("TENURE_ALLOW_PRIVATE_WEBHOOK_URLS") == "1",
            log_level=env.get("TENURE_LOG_LEVEL") or "INFO",
            worker_metrics_port=int(env.get("TENURE_WORKER_METRICS_PORT") or 9191),
            relay_stall_seconds=int(env.get("TENURE_RELAY_STALL_SECONDS") or 60),
            claim_days=int(env.get("TENURE_CLAIM_DAYS") or 30),
            operation_max_attempts=int(env.get("TENURE_OPERATION_MAX_ATTEMPTS") or 10),
            operation_max_age_seconds=int(env.get("TENURE_OPERATION_MAX_AGE_SECONDS") or 3600),
            rate_limit_url=env.get("TENURE_RATE_LIMIT_URL") or None,
            rate_limit_per_key=env.get("TENURE_RATE_LIMIT_PER_KEY") or "1000/minute",
            rate_limit_auth_failures=env.get("TENURE_RATE_LIMIT_AUTH_FAILURES") or "20/minute",
            rate_limit_signups=env.get("TENURE_RATE_LIMIT_SIGNUPS") or "20/hour",
            rate_limit_claims=env.get("TENURE_RATE_LIMIT_CLAIMS") or "10/hour",
            auth_cache_seconds=float(env.get("TENURE_AUTH_CACHE_SECONDS") or 2.0),
            event_feed_settle_seconds=float(env.get("TENURE_EVENT_FEED_SETTLE_SECONDS") or 2.0),
            ops_session_hours=int(env.get("TENURE_OPS_SESSION_HOURS") or 12),
            retention_idempotency_hours=int(env.get("TENURE_RETENTION_IDEMPOTENCY_HOURS") or 24),
            retention_inbound_days=int(env.get("TENURE_RETENTION_INBOUND_DAYS") or 7),
            retention_operations_days=int(env.get("TENURE_RETENTION_OPERATIONS_DAYS") or 90),
            retention_webhooks_days=int(env.get("TENURE_RETENTION_WEBHOOKS_DAYS") or 30),
            retention_batch_size=int(env.get("TENURE_RETENTION_BATCH_SIZE") or 2000),
            currencies=env.get("TENURE_CURRENCIES") or "EUR,USD,GBP",
        )

    @property
    def accepted_currencies(self) -> tuple[str, ...]:
        """TENURE_CURRENCIES as codes, in the order given."""
        return tuple(code.strip().upper() for code in self.currencies.split(",") if code.strip())

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")
