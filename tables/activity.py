"""The audit record: every change an organization sees, who made it, written in the change's transaction.

Who (`actor_type`, `actor_id`, `key_id`): an account and the API key it used, a verified
reseller webhook (`actor_id` is its `webhook-id`), or tenure itself (`system`: sweeps,
autorenewals). An operation's later rows (`operation.succeeded`, `operation.failed`) keep
the actor of its `operation.accepted` row, copied in SQL by the statement that writes them
(tables.operation_activity).

Never deleted: retention (tables/retention.py) does not know this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from piccolo.columns import JSON, Timestamptz, Varchar
from piccolo.table import Table

from runtime.ids import new_id
from tables.accounts import AccountRecord
from tables.api_keys import Caller
from tables.references import ORGANIZATION, reference


class Activity(Table, tablename="activity"):
    id = Varchar(length=40, primary_key=True)
    organization_id = reference(ORGANIZATION, help_text="The organization that sees it.")
    actor_type = Varchar(length=20, help_text="account, webhook, ops or system")
    actor_id = Varchar(
        length=200, index=True, help_text="The account's id, the reseller webhook's webhook-id, or `system`."
    )
    key_id = Varchar(length=40, null=True, default=None, help_text="The API key an account used.")
    kind = Varchar(length=60, index=True, help_text="What happened: team.created, operation.accepted, ...")
    product_id = Varchar(length=40, null=True, default=None, index=True)
    client_id = Varchar(length=40, null=True, default=None, index=True)
    operation_id = Varchar(length=40, null=True, default=None, index=True)
    details = JSON(default="{}", help_text="Other ids and values involved; never a secret.")
    created_at = Timestamptz(index=True)


SYSTEM = "system"
CHUNK = 500  # rows per insert: 11 parameters each, well under both databases' limits


@dataclass(frozen=True)
class Actor:
    type: str  # account, webhook, system
    id: str
    key_id: str | None = None

    @classmethod
    def account(cls, account: AccountRecord) -> Actor:
        """The caller of an API route (web.access.provide_account), or an account just made for it."""
        return cls("account", account.id, account.key_id if isinstance(account, Caller) else None)

    @classmethod
    def webhook(cls, webhook_id: str) -> Actor:
        return cls("webhook", webhook_id)

    @classmethod
    def ops(cls) -> Actor:
        """The operators, through the ops API (ops holds one shared token: no account)."""
        return cls("ops", "ops")


TENURE = Actor(SYSTEM, SYSTEM)


def row(
    organization_id: str,
    kind: str,
    actor: Actor,
    now: datetime,
    *,
    product_id: str | None = None,
    client_id: str | None = None,
    operation_id: str | None = None,
    details: dict | None = None,
    **more,
) -> dict:
    """An activity row; `details` and `more` (other ids and values, None left out) go to `details`."""
    kept = {k: v for k, v in {**(details or {}), **more}.items() if v is not None}
    return {
        "id": new_id("act"),
        "organization_id": organization_id,
        "actor_type": actor.type,
        "actor_id": actor.id,
        "key_id": actor.key_id,
        "kind": kind,
        "product_id": product_id,
        "client_id": client_id,
        "operation_id": operation_id,
        "details": kept,
        "created_at": now,
    }


async def record(organization_id: str, kind: str, actor: Actor, now: datetime, **ids) -> None:
    """One activity row, in the caller's transaction. `ids`: product_id, client_id, operation_id,
    and whatever else names what changed (kept in `details`)."""
    await record_rows([row(organization_id, kind, actor, now, **ids)])


async def record_rows(rows: list[dict]) -> None:
    """Several rows (one organization each) in one statement."""
    for start in range(0, len(rows), CHUNK):
        await Activity.insert(*(Activity(**each) for each in rows[start : start + CHUNK]))


# --- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    organization_id: str
    actor: str | None = None  # an account id, a webhook-id, `system`, or `webhook` (any webhook)
    kind: str | None = None
    product_id: str | None = None
    client_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list:
        found = [Activity.organization_id == self.organization_id]
        if self.actor == "webhook":
            found.append(Activity.actor_type == "webhook")
        elif self.actor is not None:
            found.append(Activity.actor_id == self.actor)
        if self.kind is not None:
            found.append(Activity.kind == self.kind)
        if self.product_id is not None:
            found.append(Activity.product_id == self.product_id)
        if self.client_id is not None:
            found.append(Activity.client_id == self.client_id)
        if self.since is not None:
            found.append(Activity.created_at >= self.since)
        if self.until is not None:
            found.append(Activity.created_at < self.until)
        return found

    def select(self):
        return Activity.select().where(*self.conditions()).output(load_json=True)


async def count(wanted: Filter) -> int:
    return await Activity.count().where(*wanted.conditions())
