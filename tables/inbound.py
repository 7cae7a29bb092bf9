"""Inbound webhooks: a reseller's signing secrets and the webhook ids already seen, their tables and queries.

Secrets are not hashed like API keys: checking a Standard Webhooks signature
recomputes an HMAC-SHA256 keyed with the secret itself, so tenure must keep the
key. They are stored encrypted (tables.secrets_at_rest) and shown to the reseller
once, at rotation.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from piccolo.columns import Text, Timestamptz, Varchar
from piccolo.table import Table

from runtime.ids import new_id
from tables import secrets_at_rest
from tables.engine import insert_unless_taken
from tables.operations import Operation
from tables.references import ORGANIZATION, reference
from tables.webhooks import new_secret


class InboundSecret(Table, tablename="inbound_secrets"):
    id = Varchar(length=40, primary_key=True)
    organization_id = reference(ORGANIZATION, help_text="The organization whose back office signs with it.")
    secret = Varchar(length=100, help_text="Clear, from before encryption at rest; emptied by `tenure migrate`.")
    sealed_secret = Text(null=True, default=None, help_text="The verifying secret, encrypted (tables.secrets_at_rest).")
    created_at = Timestamptz()
    retired_at = Timestamptz(null=True, default=None, help_text="When it stopped verifying; null: still in use.")


class InboundMessage(Table, tablename="inbound_messages"):
    """A verified inbound webhook id, kept (not cached) so a resend gets the same operation."""

    message_key = Varchar(length=300, primary_key=True, help_text="organization id + webhook-id")
    operation_id = Varchar(length=40, help_text="The operation the message made; a resend answers it again.")
    received_at = Timestamptz(index=True)


# A rotated-out secret keeps verifying for this long, so a reseller can roll its senders.
RETIRED_SECRET_GRACE = timedelta(hours=24)


async def rotate(org_id: str, now: datetime) -> tuple[str, datetime | None]:
    """Retires the current secret (valid 24 h more) and makes a new one; answers the new
    secret and until when the previous one stays valid (None if there was none).

    Call inside a transaction that holds the organization's lock, so that two
    rotations never leave two current secrets.
    """
    # Secrets past their grace period verify nothing any more: do not keep them.
    await InboundSecret.delete().where(
        (InboundSecret.organization_id == org_id)
        & InboundSecret.retired_at.is_not_null()
        & (InboundSecret.retired_at <= now - RETIRED_SECRET_GRACE)
    )
    retired = (
        await InboundSecret.update({InboundSecret.retired_at: now})
        .where((InboundSecret.organization_id == org_id) & InboundSecret.retired_at.is_null())
        .returning(InboundSecret.id)
    )
    secret = new_secret()
    await InboundSecret.insert(
        InboundSecret(
            id=new_id("whs"),
            organization_id=org_id,
            secret="",
            sealed_secret=secrets_at_rest.seal(secret),
            created_at=now,
            retired_at=None,
        )
    )
    return secret, (now + RETIRED_SECRET_GRACE) if retired else None


async def valid_secrets(org_id: str, now: datetime) -> list[str]:
    """The secrets that verify the organization's webhooks now: the current one first,
    then those retired less than 24 h ago."""
    rows = (
        await InboundSecret.select(InboundSecret.secret, InboundSecret.sealed_secret, InboundSecret.retired_at)
        .where(
            (InboundSecret.organization_id == org_id)
            & (InboundSecret.retired_at.is_null() | (InboundSecret.retired_at > now - RETIRED_SECRET_GRACE))
        )
        .order_by(InboundSecret.created_at, ascending=False)
    )
    return [secrets_at_rest.secret_of(r) for r in sorted(rows, key=lambda r: r["retired_at"] is not None)]


async def revoke_retired(org_id: str) -> int:
    """Ends the overlap of a rotation now: the retired secrets verify nothing any more.
    Answers how many there were."""
    gone = (
        await InboundSecret.delete()
        .where((InboundSecret.organization_id == org_id) & InboundSecret.retired_at.is_not_null())
        .returning(InboundSecret.id)
    )
    return len(gone)


def message_key(org_id: str, webhook_id: str) -> str:
    return f"{org_id}:{webhook_id}"


def idem_key(org_id: str, webhook_id: str) -> str:
    """The operation's idempotency key for a webhook: its unique index dedupes concurrent posts.

    It starts with `inbound:`, where an API caller's key always starts with its organization's
    id (web.idempotency.key_for): no Idempotency-Key can take a webhook's place.
    """
    return f"inbound:{org_id}:{webhook_id}"


def _legacy_idem_key(org_id: str, webhook_id: str) -> str:
    """The key webhooks' operations had before: inside the API's namespace (`{org}:...`)."""
    return f"{org_id}:inbound:{webhook_id}"


async def seen(org_id: str, webhook_id: str) -> tuple[str, bool] | None:
    """The operation a webhook id already made and whether its InboundMessage row exists; None if new.

    The InboundMessage row is the lasting record (kept at least 7 days); the
    operation's idempotency key covers the moment between the operation's commit
    and that row's (a crash there loses no dedupe).
    """
    row = (
        await InboundMessage.select(InboundMessage.operation_id)
        .where(InboundMessage.message_key == message_key(org_id, webhook_id))
        .first()
    )
    if row is not None:
        return row["operation_id"], True
    # Operations recorded under the older key are webhooks' only if no account asked for them
    # (an API caller could have sent `Idempotency-Key: inbound:<id>`).
    op = (
        await Operation.select(Operation.id)
        .where(
            (Operation.idem_key == idem_key(org_id, webhook_id))
            | ((Operation.idem_key == _legacy_idem_key(org_id, webhook_id)) & Operation.account_id.is_null())
        )
        .first()
    )
    return (op["id"], False) if op is not None else None


async def remember(org_id: str, webhook_id: str, operation_id: str, now: datetime) -> bool:
    """Records the webhook id and its operation; False if it was already recorded."""
    inserted = await insert_unless_taken(
        InboundMessage(
            message_key=message_key(org_id, webhook_id),
            operation_id=operation_id,
            received_at=now,
        ),
        InboundMessage.message_key,
    )
    return bool(inserted)
