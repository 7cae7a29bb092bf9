"""Accepting an operation: one row committed (the outbox), then a send; 202 either way."""

from __future__ import annotations

import anyio
from litestar import Request

from tables import operations
from tables.clock import clock
from tables.engine import transaction
from web import idempotency
from web.schemas import ErrorOut, OperationOut
from worker.queue import operation_message


def operation_out(row: dict) -> OperationOut:
    error = ErrorOut(code=row["error_code"], message=row["error_message"] or "") if row.get("error_code") else None
    return OperationOut(id=row["id"], kind=row["kind"], status=row["status"], error=error,
                        result=row.get("result"), organization_id=row["organization_id"],
                        product_id=row.get("product_id"), created_at=row["created_at"],
                        finished_at=row.get("finished_at"))


async def accept(request: Request, *, kind: str, org_id: str, account_id: str | None, data: object,
                 params: dict, product_id: str | None = None,
                 idem_key: str | None = None) -> OperationOut:
    """Records the operation durably and sends it; a replayed Idempotency-Key returns the first one."""
    now = clock.now()
    wanted = idempotency.request_hash(request, data)
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
    if not await anyio.to_thread.run_sync(sender.send, operation_message(kind, row["id"])):
        async with transaction():
            await operations.unsent(row["id"])  # the relay sends it at its next tick
    return operation_out(row)
