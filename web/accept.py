"""Accepting an operation: one row committed (the outbox), then a send; 202 either way."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import structlog
from litestar import Request

from rules.errors import RuleViolation
from tables import operations
from tables.clock import clock
from tables.engine import transaction
from web import idempotency
from web.schemas import ErrorOut, OperationOut
from worker.queue import operation_message

log = structlog.get_logger("tenure.web")
KEY_PERMISSIONS = "key_permissions"  # in an operation's params: the narrowing of the key that asked


def operation_out(row: dict) -> OperationOut:
    error = ErrorOut(code=row["error_code"], message=row["error_message"] or "") if row.get("error_code") else None
    return OperationOut(id=row["id"], kind=row["kind"], status=row["status"], error=error,
                        result=row.get("result"), organization_id=row["organization_id"],
                        product_id=row.get("product_id"), created_at=row["created_at"],
                        finished_at=row.get("finished_at"))


async def replayed(request: Request, org_id: str, data: object,
                   idem_key: str | None = None) -> OperationOut | None:
    """The operation a replayed Idempotency-Key already made, checked before any other rule
    (a replay after success must not fail on what the first request changed, e.g. name_taken)."""
    key = idem_key if idem_key is not None else idempotency.key_for(request, org_id)
    if key is None:
        return None
    existing = await operations.by_idem_key(key)
    if existing is None:
        return None
    idempotency.check_same_request(existing, idempotency.request_hash(request, data))
    return operation_out(existing)


async def intake_or_replay(request: Request, org_id: str, data: object,
                           check: Callable[[], Awaitable[dict]]) -> tuple[OperationOut | None, dict]:
    """Runs the operation's checks unless its Idempotency-Key was already used; a check that
    fails because a concurrent twin just took effect (say name_taken) also answers the twin."""
    if replay := await replayed(request, org_id, data):
        return replay, {}
    try:
        return None, await check()
    except RuleViolation:
        if replay := await replayed(request, org_id, data):
            return replay, {}
        raise


async def accept(request: Request, *, kind: str, org_id: str, account_id: str | None, data: object,
                 params: dict, product_id: str | None = None,
                 idem_key: str | None = None) -> OperationOut:
    """Records the operation durably and sends it; a replayed Idempotency-Key returns the first one."""
    now = clock.now()
    wanted = idempotency.request_hash(request, data)
    narrowed = getattr(request.state, "key_permissions", None) if account_id is not None else None
    if narrowed is not None:  # asked with a narrowed API key: the worker's recheck narrows the same way
        params = {**params, KEY_PERMISSIONS: sorted(narrowed)}
    row = operations.new_row(
        kind, org_id, now, account_id=account_id, params=params, product_id=product_id,
        idem_key=idem_key if idem_key is not None else idempotency.key_for(request, org_id),
        request_hash=wanted, enqueued_at=now)
    async with transaction():
        op, created = await operations.insert_or_get(row)
    if not created:
        idempotency.check_same_request(op, wanted)
        return operation_out(await operations.get(op["id"]))
    sender = request.app.state.sender
    sent = await anyio.to_thread.run_sync(sender.send, operation_message(kind, row["id"]))
    if not sent:
        async with transaction():
            await operations.unsent(row["id"])  # the relay sends it at its next tick
    log.info("operation_accepted", operation_id=row["id"], kind=kind, organization_id=org_id,
             product_id=product_id, sent=sent)
    return operation_out(row)
