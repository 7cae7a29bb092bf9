"""The sweeps' actors: state changes, expiry reminders and autorenew attempts, per product.

The scheduler leases due products (pushing their next_*_at forward) and sends their
ids here in batches. Each product is handled in its own transaction; every effect is
keyed (event dedupe keys, the renewal's idempotency key), so a batch run twice, or
after a crash, changes nothing more.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from rules import lifecycle
from rules import webhooks as hooks
from rules.billing import payer_of
from rules.catalog import DEFAULT_CATALOG, ProductKind, kind_of
from rules.lifecycle import State, rfc3339
from rules.operations import OperationKind
from rules.schedule import next_state_change, next_window_after, states_passed
from runtime.clock import clock
from tables import activity, events, operation_activity, operation_inserts, operations, products
from tables import event_payloads as payloads
from tables.engine import transaction
from tables.operation_params import RenewalParams
from worker.actors.renewals import renewal
from worker.execution import Bounds, Ran, run_started

log = structlog.get_logger("tenure.lifecycle")


async def _locked(product_id: str) -> tuple[dict, ProductKind] | tuple[None, None]:
    product = await products.lock_full(product_id)
    if product is None:
        return None, None
    return product, kind_of(DEFAULT_CATALOG, product["kind"])


async def advance_state(product_id: str, now: datetime | None = None) -> list[str]:
    """Moves the product through every state it has reached by `now` (default: the clock's;
    a test clock passes its own); returns their names."""
    now = now or clock.now()
    async with transaction():
        product, kind = await _locked(product_id)
        if product is None:
            return []
        stored = State(product["state"])
        passed = states_passed(kind, stored, product["expires_at"], now)
        reached = passed[-1] if passed else stored
        values: dict = {"next_state_at": next_state_change(kind, product["expires_at"], reached)}
        if passed:
            values["state"] = passed[-1].value
        if passed and passed[-1] is State.DELETED:
            values.update(name_key=None, next_autorenew_at=None, next_reminder_at=None)
        await products.update(product_id, now, **values)
        previous = stored
        for state in passed:
            data = payloads.ProductStateChanged(
                name=product["name"],
                kind=product["kind"],
                client_id=product["client"],
                expires_at=rfc3339(product["expires_at"]),
                from_state=previous.value,
                to_state=state.value,
            )
            await events.record(
                hooks.state_change_event(state),
                product["organization"],
                now,
                product_id=product_id,
                data=data,
                dedupe_key=f"state:{product_id}:{product['expires_at'].isoformat()}:{state.value}",
            )
            previous = state
    return [s.value for s in passed]


async def send_reminder(product_id: str, now: datetime | None = None) -> int | None:
    """Records product.expiring for the window open now (once per product, expiry and window)."""
    now = now or clock.now()
    async with transaction():
        product, kind = await _locked(product_id)
        if product is None:
            return None
        expires_at = product["expires_at"]
        days = lifecycle.due_reminder(kind, expires_at, now) if product["state"] == State.ACTIVE else None
        if days is not None:
            await events.record(
                "product.expiring",
                product["organization"],
                now,
                product_id=product_id,
                data=payloads.ProductExpiring(
                    name=product["name"],
                    kind=product["kind"],
                    client_id=product["client"],
                    days_before=days,
                    expires_at=rfc3339(expires_at),
                    autorenew=product["autorenew"],
                ),
                dedupe_key=f"expiring:{product_id}:{expires_at.isoformat()}:{days}",
            )
        await products.update(
            product_id,
            now,
            next_reminder_at=next_window_after(kind.reminder_days_before, expires_at, now)
            if product["state"] == State.ACTIVE
            else None,
        )
    return days


async def attempt_autorenew(product_id: str, bounds: Bounds = Bounds(), now: datetime | None = None) -> Ran | None:
    """Creates this window's renewal operation (once, by key) and runs it at `now`; returns how
    it ran (its follow-up, tier message and fan-out, is the caller's: `worker.batching.follow_up`)."""
    at, now = now, now or clock.now()
    async with transaction():
        product, kind = await _locked(product_id)
        if product is None:
            return None
        expires_at = product["expires_at"]
        wanted = product["autorenew"] and product["state"] == State.ACTIVE
        days = lifecycle.due_attempt(kind, expires_at, now) if wanted else None
        await products.update(
            product_id,
            now,
            next_autorenew_at=next_window_after(kind.autorenew_days_before, expires_at, now) if wanted else None,
        )
        if days is None:
            return None
        row = operations.new_row(
            OperationKind.RENEWAL,
            product["organization"],
            now,
            account_id=None,
            product_id=product_id,
            # Not in the API's `{org}:{key}` namespace: no Idempotency-Key can take its place.
            idem_key=f"autorenew:{product['organization']}:{product_id}:{expires_at.isoformat()}:{days}",
            params=RenewalParams(
                years=1,
                current_expires_at=expires_at,
                payment_method="prepaid",
                autorenew_days_before=days,
                payer=payer_of(product["organization"], product["reseller"]),
            ),
            enqueued_at=now,
        )
        op, created = await operation_inserts.insert_or_get(row)
        if created:
            await operation_activity.operations_accepted([row], activity.TENURE, {product_id: product.get("client")})
    async with transaction():
        started = await operations.mark_running(op.id, clock.now())
    ran = (
        Ran(op.id, OperationKind.RENEWAL, product["organization"], "already_finished")
        if started is None
        else await run_started(started, renewal, bounds, at=at)
    )
    log.info(
        "autorenew_attempt",
        product_id=product_id,
        operation_id=op.id,
        days_before=days,
        outcome=ran.outcome,
        first=created,
    )
    if ran.error is not None:
        raise ran.error  # the sweep's message is retried; the renewal's key keeps it once
    return ran
