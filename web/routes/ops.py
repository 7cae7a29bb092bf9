"""Ops: liveness, readiness, queues, failing operations, dead letters (behind the ops token)."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.di import Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from runtime.clock import clock
from tables import accounts, ledger, operations, organizations
from tables.activity import Actor, record
from tables.engine import transaction
from tables.operations import OperationRecord
from web.accept import operation_out
from web.errors import Conflict, Invalid, NotFound
from web.ops_auth import OpsAccess, require_ops
from web.schemas.billing import CreditLimitIn
from web.schemas.common import MoneyIO, cut
from web.schemas.operations import FailureOut, OperationPage, OpsOperationOut


@get("/health", tags=["ops"], security=[{}])
async def health() -> dict:
    """The process is alive (no dependency is checked)."""
    return {"status": "ok"}


async def readiness(request: Request) -> tuple[dict[str, str], dict[str, str]]:
    """Each dependency "ok" or "down", and why the ones down are (each check gives up after 3 s)."""
    checks: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name, check in (
        ("database", accounts.reachable),
        ("broker", lambda: anyio.to_thread.run_sync(request.app.state.monitor.ping)),
    ):
        try:
            with anyio.fail_after(3):
                await check()
            checks[name] = "ok"
        except Exception as exc:  # say which failed, and how
            checks[name] = "down"
            errors[name] = f"{type(exc).__name__}: {exc}"[:200]
    return checks, errors


@get("/ready", tags=["ops"], security=[{}])
async def ready(request: Request) -> Response:
    """The database answers: 200; otherwise 503. The broker's state is reported, not required:
    accepting stays safe while it is down (the operation is recorded, the relay sends it later)."""
    checks, errors = await readiness(request)
    body: dict = {"status": "ready", "checks": checks}
    if errors:
        body["errors"] = errors
    if checks["database"] == "ok":
        return Response(body)
    return Response(
        {**body, "status": "unavailable", "error": {"code": "not_ready", "message": "cannot reach: database"}},
        status_code=503,
    )


def ops_operation_out(op: OperationRecord) -> OpsOperationOut:
    public = operation_out(op)
    failure = op.failure
    return OpsOperationOut(
        **{f: getattr(public, f) for f in public.__struct_fields__},
        attempts=op.attempts,
        reference=op.reference,
        params=op.params or {},
        failure=msgspec.convert({"type": None, "traceback": None, "message": "", "attempts": 0, **failure}, FailureOut)
        if failure
        else None,
    )


class OpsController(Controller):
    path = "/v1/ops"
    tags = ["ops"]
    dependencies = {"ops": Provide(require_ops)}
    security = [{"OpsToken": []}]

    @get("/queues")
    async def queues(self, request: Request, ops: OpsAccess) -> list[dict]:
        """Per queue: waiting, delayed, in flight and dead-lettered messages."""
        depths = await anyio.to_thread.run_sync(request.app.state.monitor.depths)
        return [d.to_dict() for d in depths]

    @get("/operations")
    async def list_operations(
        self,
        ops: OpsAccess,
        status: FromQuery[Literal["pending", "running", "succeeded", "failed"] | None] = None,
        kind: FromQuery[str | None] = None,
        before: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> OperationPage:
        """Operations newest first; `?status=failed` for the failing ones; `before` pages on."""
        rows, cursor = cut(await operations.page_for_ops(status, kind, before, limit + 1), limit)
        return OperationPage(items=[operation_out(r) for r in rows], next_cursor=cursor)

    @get("/operations/{operation_id:str}")
    async def get_operation(self, ops: OpsAccess, operation_id: FromPath[str]) -> OpsOperationOut:
        """One operation by id, or by the `ref_...` reference quoted in an `internal_error`
        message: with its attempts, parameters and last unexpected exception (type, message,
        traceback), which tenants never see."""
        op = await operations.for_ops(operation_id)
        if op is None:
            raise NotFound("operation", operation_id)
        return ops_operation_out(op)

    @get("/dead-letters")
    async def dead_letters(
        self, request: Request, ops: OpsAccess, limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100
    ) -> list[dict]:
        letters = await anyio.to_thread.run_sync(request.app.state.monitor.dead_letters, limit)
        return [d.to_dict() for d in letters]

    @post("/dead-letters/{message_id:str}/requeue", status_code=202)
    async def requeue(self, request: Request, ops: OpsAccess, message_id: FromPath[str]) -> dict:
        """Puts a dead letter back on its queue with its retries reset."""
        if not await anyio.to_thread.run_sync(request.app.state.monitor.requeue, message_id):
            raise NotFound("dead letter", message_id)
        return {"message_id": message_id, "requeued": True}

    @put("/organizations/{org_id:str}/credit-limit")
    async def set_credit_limit(self, ops: OpsAccess, org_id: FromPath[str], data: JSONBody[CreditLimitIn]) -> dict:
        """Sets how much an organization may owe on invoice (0: invoice purchases are refused,
        `credit_limit_exceeded`). Ops only: an organization never raises its own limit. A limit
        below what is owed now refuses new invoice charges until it is settled below it."""
        org = await organizations.find(org_id)
        if org is None:
            raise NotFound("organization", org_id)
        limit = data.credit_limit
        if limit.currency != org.currency:
            raise Conflict(
                "currency_mismatch",
                f"this organization is billed in {org.currency}; give the limit in that currency",
            )
        if limit.amount < 0:
            raise Invalid("invalid_money", "a credit limit cannot be negative; 0 refuses invoice purchases")
        async with transaction():
            await ledger.set_credit_limit(org_id, limit.amount)
            await record(
                org_id,
                "billing.credit_limit_changed",
                Actor.ops(),
                clock.now(),
                credit_limit={"amount": limit.amount, "currency": limit.currency},
            )
        row = await ledger.account_of(org_id)
        return {
            "organization_id": org_id,
            "credit_limit": MoneyIO(amount=row.credit_limit, currency=row.currency),
            "owed": MoneyIO(amount=row.owed, currency=row.currency),
        }
