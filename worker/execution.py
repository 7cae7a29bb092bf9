"""The shell every operation actor shares: claim, run the handler in one transaction, finish.

Exactly once: the handler's writes and the operation's `succeeded` commit together,
under a row lock (PostgreSQL) or an IMMEDIATE transaction (SQLite); a second
delivery finds the operation finished and returns. Run inside a batch's transaction
(`worker.batching`), an operation's work is a savepoint of it instead (`tables.engine.atomic`):
its failure undoes its own writes only, and everything commits with the batch. A business failure
(RuleViolation) rolls the writes back and ends the operation as failed with its
code; anything else propagates so Dramatiq retries it, its exception kept on the
operation for ops, until the operation is out of bounds (`Bounds`: attempts or age),
when it ends as failed with `internal_error` and a `ref_...` reference instead.
"""

from __future__ import annotations

import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from rules import permissions
from rules.errors import PermissionDenied, RuleViolation
from rules.operations import OperationKind
from runtime.clock import clock
from runtime.ids import new_id
from runtime.settings import Settings
from tables import event_payloads as payloads
from tables import operation_activity, operation_params, operations, teams, test_clocks
from tables.engine import atomic, transaction
from tables.operation_params import Params
from tables.operations import OperationRecord
from worker import batch_memo, charging, metrics

log = structlog.get_logger("tenure.worker")


@dataclass
class Done:
    result: dict
    product_id: str | None = None
    charged: list[str] = field(default_factory=list)  # payers whose tier may move


Handler = Callable[[OperationRecord, datetime], Awaitable[Done]]
INTERNAL_ERROR = "internal_error"
TRACEBACK_LIMIT = 30  # frames kept, as Dramatiq keeps them
TEXT_LIMIT = 20_000  # characters of a traceback or exception message kept
# Kinds that stay running while their items (operations of their own) run: a bulk renewal.
WAITS_ON_ITEMS = frozenset({OperationKind.RENEWAL_BATCH})


@dataclass(frozen=True)
class Bounds:
    """How long an operation whose handler keeps raising is tried: `max_attempts` attempts,
    or, once tried, until it is `max_age_seconds` old (from its acceptance), whichever first.
    An operation never tried (a broker outage, a long backlog) is not failed for its age."""

    max_attempts: int = 10
    max_age_seconds: int = 3600

    @classmethod
    def of(cls, settings: Settings) -> Bounds:
        return cls(settings.operation_max_attempts, settings.operation_max_age_seconds)

    def created_before(self, now: datetime) -> datetime:
        return now - timedelta(seconds=self.max_age_seconds)

    def exhausted(self, attempts: int, created_at: datetime, now: datetime, kind: str | None = None) -> bool:
        if kind in WAITS_ON_ITEMS:  # its age is its items' wait, each item bounded itself
            return attempts >= self.max_attempts
        return attempts >= self.max_attempts or (attempts >= 1 and created_at < self.created_before(now))


async def recheck(op: OperationRecord, needed: str, payment_method: str | None = None) -> None:
    """Permissions again at execution: a member removed since the request loses the right.
    An operation asked with a narrowed API key keeps that narrowing in its params
    (`key_permissions`): the teams' permissions are intersected with it again here."""
    account_id = op.account_id
    if account_id is None:
        return  # asked by tenure itself (sweep) or a verified reseller webhook
    granted = await batch_memo.once(
        ("permissions", account_id, op.organization_id),
        lambda: teams.permissions_of(account_id, op.organization_id, permissions.ALL_PERMISSIONS),
    )
    if granted is None:
        raise PermissionDenied("the member who asked is no longer in the organization")
    key_permissions = operation_params.read(op, Params).key_permissions
    if key_permissions is not None:
        granted = granted & frozenset(key_permissions)
    permissions.require(granted, needed)
    if payment_method is not None:
        permissions.require_payment_method(granted, payment_method)


@dataclass
class Ran:
    """What one run of an operation came to, for what follows it (`worker.followup`)."""

    operation_id: str
    kind: str | None
    organization_id: str | None
    outcome: str  # succeeded, failed, already_finished, retrying
    done: Done | None = None
    parent_id: str | None = None
    error: BaseException | None = None  # the unexpected exception of a `retrying` run


async def run_operation(operation_id: str, handler: Handler, bounds: Bounds = Bounds()) -> tuple[str, Done | None]:
    """Runs one operation at most once; answers what happened and, on success, the outcome."""
    async with transaction():
        started = await operations.mark_running(operation_id, clock.now())
    if started is None:
        log.info("operation_already_finished", operation_id=operation_id)
        return "already_finished", None
    ran = await run_started(started, handler, bounds)
    if ran.error is not None:
        raise ran.error  # Dramatiq retries it (and the relay sends it again if that message is lost)
    return ran.outcome, ran.done


async def run_started(
    started: OperationRecord, handler: Handler, bounds: Bounds = Bounds(), at: datetime | None = None
) -> Ran:
    """Runs an operation already marked running (`started`: its id, attempts with this one,
    kind, created_at and organization_id) in one transaction, or in a savepoint of the caller's
    (then its outcome holds only once the caller commits); never raises for the handler:
    an unexpected exception is recorded on the operation and answered as `retrying`.

    The handler, the operation's end and its events happen at `at`, by default the time of
    the organization (a sandbox's test clock, else now); its bounds count in wall-clock time."""
    operation_id = started.id
    ran = Ran(
        operation_id,
        started.kind,
        started.organization_id,
        operations.OperationStatus.FAILED,
        parent_id=started.parent_id,
    )
    bound = log.bind(operation_id=operation_id)
    wall = clock.now()
    now = at if at is not None else await test_clocks.now_for(started.organization_id)
    if bounds.exhausted(started.attempts - 1, started.created_at, wall, started.kind):
        # Its earlier attempts used up its bounds without ending it (workers killed, time limits).
        await give_up(operation_id, wall, attempts=started.attempts - 1)
        return ran
    try:
        # Inside a batch's transaction, a savepoint: undone alone, with what it remembered.
        with charging.booked_last() as charges, batch_memo.operation():
            async with atomic():
                op = await operations.claim(operation_id)
                if op is None:
                    ran.outcome = "already_finished"
                    return ran
                done = await handler(op, now)
                await operations.finish(operation_id, now, result=done.result, product_id=done.product_id)
                await operation_activity.operation_finished(
                    "operation.succeeded",
                    op,
                    now,
                    product_id=done.product_id,
                    event_data=payloads.OperationSucceeded(kind=op.kind, result=done.result),
                )
                done.charged = sorted({*done.charged, *await charging.book_deferred(charges)})
    except RuleViolation as failure:
        kind, created_at = await _fail(operation_id, failure.code, failure.message, now)
        bound.info("operation_failed", code=failure.code, kind=kind)
        if kind:
            metrics.operation_finished(kind, operations.OperationStatus.FAILED, (wall - created_at).total_seconds())
        return ran
    except Exception as exc:
        failure = describe(exc, started.attempts, wall)
        if not bounds.exhausted(started.attempts, started.created_at, wall, started.kind):
            async with transaction():
                await operations.record_failure(operation_id, failure)
            ran.outcome, ran.error = "retrying", exc
            return ran
        await give_up(operation_id, wall, failure=failure)
        return ran
    bound.info("operation_succeeded", kind=op.kind)
    metrics.operation_finished(op.kind, operations.OperationStatus.SUCCEEDED, (wall - op.created_at).total_seconds())
    ran.kind, ran.organization_id, ran.outcome, ran.done = (
        op.kind,
        op.organization_id,
        operations.OperationStatus.SUCCEEDED,
        done,
    )
    return ran


def describe(exc: BaseException, attempts: int, now: datetime) -> dict:
    """What ops keep of an unexpected exception (never shown to the tenant)."""
    trace = "".join(traceback.format_exception(exc, limit=TRACEBACK_LIMIT))
    return {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins."),
        "message": str(exc)[:TEXT_LIMIT],
        "traceback": trace[-TEXT_LIMIT:],
        "attempts": attempts,
        "at": now.isoformat(),
    }


async def give_up(
    operation_id: str, now: datetime, *, failure: dict | None = None, attempts: int | None = None
) -> str | None:
    """Ends an operation out of bounds as failed with `internal_error` and a fresh `ref_...`
    reference (once); keeps `failure` (else the last one recorded) for ops. Answers the
    reference, or None if it was already finished."""
    reference = new_id("ref")
    async with transaction():
        op = await operations.get(operation_id)
        if op is None or op.status not in operations.UNFINISHED:
            return None
        if failure is None:
            failure = {
                **(
                    op.failure
                    or {
                        "type": None,
                        "traceback": None,
                        "at": None,
                        "message": "no exception recorded: its attempts ended "
                        "without one (worker killed or timed out?)",
                    }
                ),
                "attempts": op.attempts if attempts is None else attempts,
            }
        tried = failure.get("attempts") or op.attempts
        message = (
            f"tenure could not complete this operation: an unexpected error persisted after "
            f"{tried} attempt{'s' if tried != 1 else ''}; nothing was charged or changed. "
            f"Quote reference {reference} to support."
        )
        kind, _ = await _fail(operation_id, INTERNAL_ERROR, message, now, reference=reference, failure=failure, op=op)
    if kind is None:
        return None
    log.error(
        "operation_gave_up",
        operation_id=operation_id,
        kind=kind,
        reference=reference,
        attempts=tried,
        exception=failure.get("type"),
        error=failure.get("message"),
    )
    metrics.operation_finished(kind, operations.OperationStatus.FAILED, (now - op.created_at).total_seconds())
    return reference


async def _fail(
    operation_id: str, code: str, message: str, now: datetime, *, op: OperationRecord | None = None, **columns
) -> tuple[str | None, datetime]:
    """Ends the operation as failed (once); answers its kind and accept time (kind None if not ours)."""
    async with transaction():
        op = op or await operations.get(operation_id)
        if op is None or not await operations.finish(
            operation_id, now, error_code=code, error_message=message, **columns
        ):
            return None, now
        await operation_activity.operation_finished(
            "operation.failed",
            op,
            now,
            product_id=op.product_id,
            event_data=payloads.OperationFailed(kind=op.kind, error=payloads.ErrorData(code=code, message=message)),
        )
    return op.kind, op.created_at
