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
    log_level: str = "INFO"
    worker_metrics_port: int = 9191

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
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")
