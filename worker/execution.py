"""The shell every operation actor shares: claim, run the handler in one transaction, finish.

Exactly once: the handler's writes and the operation's `succeeded` commit together,
under a row lock (PostgreSQL) or an IMMEDIATE transaction (SQLite); a second
delivery finds the operation finished and returns. A business failure
(RuleViolation) rolls the writes back and ends the operation as failed with its
code; anything else propagates so Dramatiq retries it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from rules import permissions
from rules.errors import PermissionDenied, RuleViolation
from tables import events, operations, organizations
from tables.clock import clock
from tables.engine import transaction
from worker import metrics

log = structlog.get_logger("tenure.worker")


@dataclass
class Done:
    result: dict
    product_id: str | None = None
    charged: list[str] = field(default_factory=list)  # payers whose tier may move


Handler = Callable[[dict, datetime], Awaitable[Done]]


async def recheck(op: dict, needed: str, payment_method: str | None = None) -> None:
    """Permissions again at execution: a member removed since the request loses the right."""
    if op["account_id"] is None:
        return  # asked by tenure itself (sweep) or a verified reseller webhook
    granted = await organizations.permissions_of(op["account_id"], op["organization_id"],
                                                 permissions.ALL_PERMISSIONS)
    if granted is None:
        raise PermissionDenied("the member who asked is no longer in the organization")
    permissions.require(granted, needed)
    if payment_method is not None:
        permissions.require_payment_method(granted, payment_method)


async def run_operation(operation_id: str, handler: Handler) -> tuple[str, Done | None]:
    """Runs one operation at most once; answers what happened and, on success, the outcome."""
    bound = log.bind(operation_id=operation_id)
    async with transaction():
        if not await operations.mark_running(operation_id, clock.now()):
            bound.info("operation_already_finished")
            return "already_finished", None
    now = clock.now()
    try:
        async with transaction():
            op = await operations.claim(operation_id)
            if op is None:
                return "already_finished", None
            done = await handler(op, now)
            await operations.finish(operation_id, now, result=done.result, product_id=done.product_id)
            await events.record("operation.succeeded", op["organization_id"], now,
                                operation_id=operation_id, product_id=done.product_id,
                                data={"kind": op["kind"], "result": done.result})
    except RuleViolation as failure:
        kind, created_at = await _fail(operation_id, failure, now)
        bound.info("operation_failed", code=failure.code, kind=kind)
        if kind:
            metrics.operation_finished(kind, "failed", (now - created_at).total_seconds())
        return "failed", None
    bound.info("operation_succeeded", kind=op["kind"])
    metrics.operation_finished(op["kind"], "succeeded", (now - op["created_at"]).total_seconds())
    return "succeeded", done


async def _fail(operation_id: str, failure: RuleViolation, now: datetime) -> tuple[str | None, datetime]:
    """Ends the operation as failed (once); answers its kind and accept time (kind None if not ours)."""
    async with transaction():
        op = await operations.get(operation_id)
        finished = bool(op) and await operations.finish(operation_id, now, error_code=failure.code,
                                          error_message=failure.message)
        if finished:
            await events.record("operation.failed", op["organization_id"], now,
                                operation_id=operation_id, product_id=op["product_id"],
                                data={"kind": op["kind"],
                                      "error": {"code": failure.code, "message": failure.message}})
    return (op["kind"], op["created_at"]) if finished else (None, now)
