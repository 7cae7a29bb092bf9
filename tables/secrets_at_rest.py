"""Webhook and inbound secrets encrypted at rest.

Signatures are HMACs keyed with the secrets themselves, so tenure must be able to
read them back (they cannot be hashed like API keys): they are stored as Fernet
tokens (AES-128-CBC + HMAC-SHA256, `cryptography`) under TENURE_SECRET_KEY.

TENURE_SECRET_KEY holds one or more Fernet keys, comma-separated: the first
encrypts, every one decrypts (MultiFernet), so a key is rotated by putting a new
one first and keeping the old one second until `tenure migrate` has re-encrypted
every row under the new one.

Without the setting, a SQLite database gets a key generated once and kept next to
it (`<database file>.key`, mode 0600): the embedded mode needs no configuration.
PostgreSQL without the setting is refused: processes on several machines must share
the key, and losing it loses every secret.

Tokens are longer than the old `secret` columns allow, so they live in new
`sealed_secret` columns. Rows written before encryption at rest hold their secret in
clear in `secret`: reads still accept it, and `tenure migrate` moves it, encrypted, to
`sealed_secret` and empties `secret` (`seal_clear_rows`, run on every migrate).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from runtime.settings import Settings

KEY_FILE_SUFFIX = ".key"


class SecretKeyProblem(RuntimeError):
    """TENURE_SECRET_KEY is missing where it is required, or is not a list of Fernet keys."""


class UnreadableSecret(RuntimeError):
    """A stored secret none of the configured keys decrypts (wrong or missing key)."""


def new_key() -> str:
    return Fernet.generate_key().decode()


def parse_keys(value: str) -> list[Fernet]:
    """TENURE_SECRET_KEY's Fernet keys, first (the encrypting one) first."""
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not parts:
        raise SecretKeyProblem("TENURE_SECRET_KEY is empty: give one or more Fernet keys, comma-separated")
    keys = []
    for number, part in enumerate(parts, 1):
        try:
            keys.append(Fernet(part.encode()))
        except (ValueError, TypeError):
            raise SecretKeyProblem(
                f"key {number} of TENURE_SECRET_KEY is not a Fernet key (32 url-safe base64-encoded "
                "bytes); make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            ) from None
    return keys


def key_file_for(database_url: str) -> Path:
    """Where a SQLite database without TENURE_SECRET_KEY keeps its key: beside the database."""
    from tables.engine import sqlite_path

    path = Path(sqlite_path(database_url))
    return path.with_name(path.name + KEY_FILE_SUFFIX)


def read_or_create_key_file(path: Path) -> str:
    """The key in `path`, made first (mode 0600) if there is none; safe between processes."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(new_key() + "\n")
            try:
                os.link(draft, path)  # atomic, and never over a key another process just made
            except FileExistsError:
                pass
        finally:
            draft.unlink(missing_ok=True)
    return path.read_text().strip()


def keys_for(settings: Settings) -> list[Fernet]:
    if settings.secret_key:
        return parse_keys(settings.secret_key)
    if settings.is_sqlite:
        return parse_keys(read_or_create_key_file(key_file_for(settings.database_url)))
    raise SecretKeyProblem(
        "TENURE_SECRET_KEY is not set: with PostgreSQL every tenure process needs the same key "
        "to encrypt and read webhook secrets (see deploy/README.md, Settings). Make one with: "
        "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
    )


class SecretBox:
    """Seals secrets for storage and opens them again."""

    def __init__(self, keys: list[Fernet]) -> None:
        self._primary = keys[0]
        self._all = MultiFernet(keys)

    def seal(self, secret: str) -> str:
        return self._all.encrypt(secret.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._all.decrypt(token.encode()).decode()
        except InvalidToken:
            raise UnreadableSecret(
                "a stored webhook secret cannot be decrypted with TENURE_SECRET_KEY: the key that "
                "encrypted it is missing from the list (keep old keys after the new one until "
                "`tenure migrate` has run)"
            ) from None

    def resealed(self, token: str) -> str | None:
        """The token encrypted again under the first key, or None if it already is."""
        try:
            self._primary.decrypt(token.encode())
            return None
        except InvalidToken:
            self.open(token)  # readable with some key, or UnreadableSecret
            return self._all.rotate(token.encode()).decode()


_box: SecretBox | None = None


def configure(settings: Settings) -> SecretBox:
    """Makes this process's box from the settings; raises SecretKeyProblem if it cannot."""
    global _box
    _box = SecretBox(keys_for(settings))
    return _box


def configured() -> bool:
    return _box is not None


def box() -> SecretBox:
    if _box is None:
        raise RuntimeError("secrets at rest are not configured: call tables.secrets_at_rest.configure(settings)")
    return _box


def seal(secret: str) -> str:
    return box().seal(secret)


def secret_of(row: dict) -> str:
    """The secret of a row with `sealed_secret` and `secret` columns (the latter: clear, legacy)."""
    return box().open(row["sealed_secret"]) if row["sealed_secret"] else row["secret"]


async def seal_clear_rows() -> int:
    """Encrypts the secrets still stored in clear, and re-encrypts under the first key those
    sealed under another (the stored answers of POSTs too); answers how many rows changed.
    Run by `tenure migrate`."""
    from tables.inbound import InboundSecret
    from tables.webhooks import WebhookEndpoint

    changed = 0
    for table in (WebhookEndpoint, InboundSecret):
        rows = await table.select(table.id, table.secret, table.sealed_secret)
        for row in rows:
            if row["secret"]:
                values = {table.sealed_secret: seal(row["secret"]), table.secret: ""}
            elif row["sealed_secret"] and (token := box().resealed(row["sealed_secret"])):
                values = {table.sealed_secret: token}
            else:
                continue
            await table.update(values).where(table.id == row["id"])
            changed += 1
    # An endpoint's previous secret (signing beside the current one after a rotation).
    rows = await WebhookEndpoint.select(WebhookEndpoint.id, WebhookEndpoint.previous_sealed_secret).where(
        WebhookEndpoint.previous_sealed_secret.is_not_null()
    )
    for row in rows:
        if token := box().resealed(row["previous_sealed_secret"]):
            await WebhookEndpoint.update({WebhookEndpoint.previous_sealed_secret: token}).where(
                WebhookEndpoint.id == row["id"]
            )
            changed += 1
    from tables.idempotency import IdempotentResponse  # stored answers of POSTs, kept 24 h

    answers = await IdempotentResponse.select(IdempotentResponse.id, IdempotentResponse.sealed_body).where(
        IdempotentResponse.sealed_body.is_not_null()
    )
    for row in answers:
        if token := box().resealed(row["sealed_body"]):
            await IdempotentResponse.update({IdempotentResponse.sealed_body: token}).where(
                IdempotentResponse.id == row["id"]
            )
            changed += 1
    return changed
