"""Idempotency-Key handling shared by every state-changing POST."""

from __future__ import annotations

import hashlib
import re

import msgspec
from litestar import Request

from web.errors import Invalid

MAX_KEY_LENGTH = 200
# Visible ASCII, spaces inside only: what any HTTP client can send as a header value.
KEY_PATTERN = r"^[!-~](?:[ -~]*[!-~])?$"
_KEY = re.compile(KEY_PATTERN)


def key_for(request: Request, org_id: str) -> str | None:
    """The stored key: organization + the client's Idempotency-Key (None when absent).

    It always starts with the organization's id: the keys tenure makes for inbound webhooks
    start with `inbound:` (tables.inbound.idem_key), so no client key can stand for one."""
    key = client_key(request)
    return None if key is None else f"{org_id}:{key}"


def client_key(request: Request) -> str | None:
    """The request's Idempotency-Key, checked (None when absent); 422 if it is not 1-200
    visible ASCII characters (spaces inside allowed)."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    key = key.strip()
    if len(key) > MAX_KEY_LENGTH or not _KEY.match(key):
        raise Invalid(
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} visible ASCII characters (spaces inside "
            "allowed), such as a UUID",
        )
    return key


def request_hash(request: Request, data: object) -> str:
    """Same method, path and decoded body give the same hash (whitespace does not matter)."""
    digest = hashlib.sha256(f"{request.method} {request.url.path}\n".encode())
    digest.update(msgspec.json.encode(data))
    return digest.hexdigest()


def check_same_request(recorded_hash: str | None, wanted_hash: str) -> None:
    """`recorded_hash`: the hash recorded with the key's first request (its operation's, or its stored answer's)."""
    if recorded_hash != wanted_hash:
        raise Invalid(
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request; use a new key for a new request",
        )
