"""Accepting an operation: one row committed (the outbox), then a send; 202 either way."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter

from rules.errors import RuleViolation
from rules.quotes import Priced
from runtime.clock import clock
from tables import activity, operation_activity, operations
from tables.activity import Actor
from tables.operation_params import Params
from tables.operations import OperationRecord
from web import idempotency
from web.errors import BadHeader
from web.schemas.common import MoneyIO
from web.schemas.operations import BatchDryRunOut, DryRunOut, ErrorOut, OperationOut, QuoteOut

log = structlog.get_logger("tenure.web")


def operation_out(op: OperationRecord) -> OperationOut:
    error = ErrorOut(code=op.error_code, message=op.error_message or "") if op.error_code else None
    return OperationOut(
        id=op.id,
        kind=op.kind,
        status=op.status,
        error=error,
        result=op.result,
        organization_id=op.organization_id,
        product_id=op.product_id,
        created_at=op.created_at,
        finished_at=op.finished_at,
    )


async def replayed(request: Request, org_id: str, data: object, idem_key: str | None = None) -> OperationOut | None:
    """The operation a replayed Idempotency-Key already made, checked before any other rule
    (a replay after success must not fail on what the first request changed, e.g. name_taken)."""
    key = idem_key if idem_key is not None else idempotency.key_for(request, org_id)
    if key is None:
        return None
    existing = await operations.by_idem_key(key)
    if existing is None:
        return None
    idempotency.check_same_request(existing.request_hash, idempotency.request_hash(request, data))
    return operation_out(existing)


async def intake_or_replay(
    request: Request, org_id: str, data: object, check: Callable[[], Awaitable[Params]]
) -> tuple[OperationOut | None, Any]:
    """Runs the operation's checks unless its Idempotency-Key was already used; a check that
    fails because a concurrent twin just took effect (say name_taken) also answers the twin.
    Answers (the twin, None) or (None, the params `check` made)."""
    if replay := await replayed(request, org_id, data):
        return replay, None
    return await checked_or_replay(request, org_id, data, check)


async def checked_or_replay(
    request: Request, org_id: str, data: object, check: Callable[[], Awaitable[Params]]
) -> tuple[OperationOut | None, Any]:
    """Runs the operation's checks; one that fails answers the Idempotency-Key's operation
    instead, if there is one. For checks that read nothing the first request could have
    changed, so that the accept's own statement finds the key's operation (`accept`'s
    `unless_name_held`): one round trip where `intake_or_replay` takes two."""
    try:
        return None, await check()
    except RuleViolation:
        if replay := await replayed(request, org_id, data):
            return replay, None
        raise


class NameHeld(Exception):
    """Nothing was accepted: a product holds the name the operation was to take (`accept`'s
    `unless_name_held`); its caller answers name_taken."""


async def accept(
    request: Request,
    *,
    kind: str,
    org_id: str,
    account_id: str | None,
    data: object,
    params: Params,
    product_id: str | None = None,
    idem_key: str | None = None,
    unless_name_held: str | None = None,
) -> OperationOut:
    """Records the operation durably and sends it; a replayed Idempotency-Key returns the first one."""
    op, _ = await accept_once(
        request,
        kind=kind,
        org_id=org_id,
        account_id=account_id,
        data=data,
        params=params,
        product_id=product_id,
        idem_key=idem_key,
        unless_name_held=unless_name_held,
    )
    return op


async def accept_once(
    request: Request,
    *,
    kind: str,
    org_id: str,
    account_id: str | None,
    data: object,
    params: Params,
    product_id: str | None = None,
    idem_key: str | None = None,
    actor: Actor | None = None,
    unless_name_held: str | None = None,
) -> tuple[OperationOut, bool]:
    """As `accept`, also answering whether this call made the operation (False: its key's twin did).
    `actor` (for the activity record) defaults to the calling account and its key.
    `unless_name_held`: a name key (tables.product_names.name_key) the operation is to take; while a
    product holds it, nothing is recorded and NameHeld is raised, unless the Idempotency-Key's
    operation exists (it is answered first, as a replay is)."""
    now = clock.now()
    wanted = idempotency.request_hash(request, data)
    narrowed = getattr(request.state, "key_permissions", None) if account_id is not None else None
    if narrowed is not None:  # asked with a narrowed API key: the worker's recheck narrows the same way
        params = msgspec.structs.replace(params, key_permissions=sorted(narrowed))
    row = operations.new_row(
        kind,
        org_id,
        now,
        account_id=account_id,
        params=params,
        product_id=product_id,
        idem_key=idem_key if idem_key is not None else idempotency.key_for(request, org_id),
        request_hash=wanted,
        enqueued_at=now,
    )
    if actor is None:
        actor = (
            Actor("account", account_id, getattr(request.state, "key_id", None))
            if account_id is not None
            else activity.TENURE
        )
    if not await operation_activity.insert_accepted(row, actor, unless_name_held=unless_name_held):
        op = await operations.by_idem_key(row["idem_key"]) if row["idem_key"] is not None else None
        if op is None and unless_name_held is not None:
            raise NameHeld(unless_name_held)
        if op is None:  # its Idempotency-Key is taken: never without its operation
            raise RuntimeError(f"operation {row['id']} was not recorded and no operation holds its key")
        idempotency.check_same_request(op.request_hash, wanted)  # the key's twin, answered
        return operation_out(op), False
    request.app.state.outbox.submit(kind, row["id"])  # sent off the request path
    log.info("operation_accepted", operation_id=row["id"], kind=kind, organization_id=org_id, product_id=product_id)
    return operation_out(operations.record(row)), True


def accepted(op: OperationOut) -> Response[OperationOut]:
    return Response(op, status_code=202)


# --- dry runs: every check of the real request, nothing written ---------------------------------

DryRunHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Dry-Run",
        required=False,
        schema_extra={"enum": ["1"]},
        description="`1`: run every check the request would make and answer 200 with its quote and "
        "the error it would end with (`would_fail`); nothing is written, no operation is made, "
        "Idempotency-Key is not used. Any other value is refused (400 `invalid_dry_run`).",
    ),
]

DRY_RUN_RESPONSES = {
    200: ResponseSpec(
        data_container=DryRunOut,
        generate_examples=False,
        description="Dry-Run: 1: the quote, and the error the real request would end with (null if none)",
    )
}

BATCH_DRY_RUN_RESPONSES = {
    200: ResponseSpec(
        data_container=BatchDryRunOut,
        generate_examples=False,
        description="Dry-Run: 1: the total quote of the items that would renew, and each item's quote "
        "or the error it would end with",
    )
}


def dry_run_wanted(value: str | None) -> bool:
    """True for `Dry-Run: 1`, False without the header; 400 for any other value."""
    if value is None:
        return False
    if value.strip() == "1":
        return True
    raise BadHeader(
        "invalid_dry_run", f"the Dry-Run header must be 1 (check and quote only) or be left out; got {value[:20]!r}"
    )


def quote_out(quote: Priced | None) -> QuoteOut | None:
    if quote is None:
        return None

    def money(amount) -> MoneyIO:
        return MoneyIO(amount=amount.amount, currency=amount.currency)

    return QuoteOut(
        price=money(quote.price),
        list_price=money(quote.list_price),
        discount_percent=quote.discount_percent,
        tier=quote.tier,
        restore_fee=money(quote.restore_fee),
        new_expires_at=quote.new_expires_at,
        payer=quote.payer,
        payment_method=quote.payment_method,
    )


def error_out(failure: RuleViolation | None) -> ErrorOut | None:
    return ErrorOut(code=failure.code, message=failure.message) if failure else None


@dataclass
class Trial:
    """What a dry run learnt so far: the quote once it is known."""

    quote: Priced | None = None


async def dry_run(check: Callable[[Trial], Awaitable[None]]) -> Response[DryRunOut]:
    """Runs `check` (the real request's checks, reading only): a business rule it breaks is
    reported in `would_fail` with 200; any other error (401, 404, 400) is raised as usual."""
    trial = Trial()
    failure = None
    try:
        await check(trial)
    except RuleViolation as broken:
        failure = broken
    return Response(
        DryRunOut(dry_run=True, quote=quote_out(trial.quote), would_fail=error_out(failure)), status_code=200
    )
