"""Ops: liveness, readiness, queues, failing operations, dead letters (behind the ops token)."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from litestar.params import Parameter

from tables import operations
from web.accept import operation_out
from web.errors import NotFound
from web.ops_auth import require_ops
from web.schemas import Page, cut


@get("/health", tags=["ops"], security=[{}])
async def health() -> dict:
    """The process is alive (no dependency is checked)."""
    return {"status": "ok"}


async def readiness(request: Request) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        with anyio.fail_after(3):
            await _select_one()
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; say which
        checks["database"] = f"unreachable: {type(exc).__name__}: {exc}"[:200]
    try:
        with anyio.fail_after(3):
            await anyio.to_thread.run_sync(request.app.state.monitor.ping)
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"unreachable: {type(exc).__name__}: {exc}"[:200]
    return checks


async def _select_one() -> None:
    from tables.accounts import Account

    await Account.select(Account.id).limit(1)


@get("/ready", tags=["ops"], security=[{}])
async def ready(request: Request) -> Response:
    """Database and broker reachable: 200; otherwise 503 naming what failed."""
    checks = await readiness(request)
    failing = sorted(name for name, state in checks.items() if state != "ok")
    if not failing:
        return Response({"status": "ready", "checks": checks})
    return Response({"status": "unavailable", "checks": checks,
                     "error": {"code": "not_ready", "message": f"cannot reach: {', '.join(failing)}"}},
                    status_code=503)


class OpsController(Controller):
    path = "/v1/ops"
    tags = ["ops"]
    dependencies = {"ops": Provide(require_ops)}
    security = [{"OpsToken": []}]

    @get("/queues")
    async def queues(self, request: Request, ops: None) -> list[dict]:
        """Per queue: waiting, delayed, in flight and dead-lettered messages."""
        depths = await anyio.to_thread.run_sync(request.app.state.monitor.depths)
        return [d.to_dict() for d in depths]

    @get("/operations")
    async def list_operations(
        self, ops: None, status: Literal["pending", "running", "succeeded", "failed"] | None = None,
        kind: str | None = None, before: str | None = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    ) -> Page:
        """Operations newest first; `?status=failed` for the failing ones; `before` pages on."""
        rows, cursor = cut(await operations.page_for_ops(status, kind, before, limit + 1), limit)
        return Page(items=[operation_out(r) for r in rows], next_cursor=cursor)

    @get("/dead-letters")
    async def dead_letters(self, request: Request, ops: None,
                           limit: Annotated[int, Parameter(ge=1, le=500)] = 100) -> list[dict]:
        letters = await anyio.to_thread.run_sync(request.app.state.monitor.dead_letters, limit)
        return [d.to_dict() for d in letters]

    @post("/dead-letters/{message_id:str}/requeue", status_code=202)
    async def requeue(self, request: Request, ops: None, message_id: str) -> dict:
        """Puts a dead letter back on its queue with its retries reset."""
        if not await anyio.to_thread.run_sync(request.app.state.monitor.requeue, message_id):
            raise NotFound("dead letter", message_id)
        return {"message_id": message_id, "requeued": True}
