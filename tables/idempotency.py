"""Stored answers of synchronous POSTs sent with an Idempotency-Key (web/idempotent_posts.py).

One row per caller + method + path + key. The first request inserts it `pending`
(status null) before its handler runs, so a concurrent twin finds it and does not run
the handler again; the answer is stored when the handler is done, or the row deleted
when there is nothing to keep (a 5xx, a crash). Bodies are stored encrypted with the
at-rest cipher (tables.secrets_at_rest): some answers show a secret once (an API key, a
webhook or inbound secret, a claim token). Retention deletes rows after 24 h.

The operation routes (purchases, renewals, transfers, releases, funds) keep their keys
in `operations.idem_key` instead: the two never meet.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from piccolo.columns import Integer, Text, Timestamptz, Varchar
from piccolo.table import Table

from tables import secrets_at_rest
from tables.engine import insert_unless_taken


class IdempotentResponse(Table, tablename="idempotent_responses"):
    id = Varchar(length=64, primary_key=True, help_text="sha256 of caller, method, path and key")
    caller = Varchar(length=120, help_text="account:<id>, token:<digest> or address:<client address>")
    method = Varchar(length=10)
    path = Text()
    idem_key = Varchar(length=200)
    request_hash = Varchar(length=64, help_text="sha256 of the body: the same key with another body is refused.")
    holder = Varchar(length=40, help_text="The request running the handler (fences a stale take-over).")
    status = Integer(null=True, default=None, help_text="Null while the first request runs.")
    media_type = Varchar(length=100, null=True, default=None)
    sealed_body = Text(null=True, default=None, help_text="The answer's body, encrypted at rest.")
    created_at = Timestamptz(index=True)


def row_id(caller: str, method: str, path: str, key: str) -> str:
    return hashlib.sha256("\n".join((caller, method, path, key)).encode()).hexdigest()


async def begin(row: dict) -> dict | None:
    """Inserts the pending row; None if it was inserted, else the row already there."""
    inserted = await insert_unless_taken(IdempotentResponse(**row), IdempotentResponse.id)
    if inserted:
        return None
    return await IdempotentResponse.select().where(IdempotentResponse.id == row["id"]).first()


async def take_over(answer_id: str, holder: str, stale_before: datetime, now: datetime) -> bool:
    """Takes a pending row whose request started before `stale_before` (its process died)."""
    taken = (
        await IdempotentResponse.update(
            {
                IdempotentResponse.holder: holder,
                IdempotentResponse.created_at: now,
            }
        )
        .where(
            (IdempotentResponse.id == answer_id)
            & IdempotentResponse.status.is_null()
            & (IdempotentResponse.created_at < stale_before)
        )
        .returning(IdempotentResponse.id)
    )
    return bool(taken)


async def finish(answer_id: str, holder: str, status: int, media_type: str | None, body: bytes) -> bool:
    """Stores the answer (its body encrypted); False if another request took the row over."""
    stored = (
        await IdempotentResponse.update(
            {
                IdempotentResponse.status: status,
                IdempotentResponse.media_type: media_type,
                IdempotentResponse.sealed_body: secrets_at_rest.seal(body.decode("utf-8")),
            }
        )
        .where(
            (IdempotentResponse.id == answer_id)
            & (IdempotentResponse.holder == holder)
            & IdempotentResponse.status.is_null()
        )
        .returning(IdempotentResponse.id)
    )
    return bool(stored)


async def abandon(answer_id: str, holder: str) -> None:
    """Deletes the pending row: nothing to replay, the client may retry with the same key."""
    await IdempotentResponse.delete().where(
        (IdempotentResponse.id == answer_id)
        & (IdempotentResponse.holder == holder)
        & IdempotentResponse.status.is_null()
    )


def body_of(row: dict) -> bytes:
    return secrets_at_rest.box().open(row["sealed_body"]).encode("utf-8")
