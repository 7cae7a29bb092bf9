"""A batch of purchases run set-wise: checks in Python, then one write for all.

The general path (`worker.batching`) runs each operation of a batch in a savepoint of the
batch's transaction, eight or so statements each. Purchases need nothing from the database
that the batch does not share (`worker.batch_memo`) to decide each one's outcome, so here,
in the same one transaction: the claimed operations are locked and re-checked in one
statement; each is planned (`worker.actors.purchases.plan`: permissions, owner, price) and
its charge checked against the batch's balance, in Python; a business failure (RuleViolation)
fails that operation alone with its code and `operation.failed` event; then every product,
schedule, ledger line, event, activity row and operation end of the batch is written by one
statement on PostgreSQL, one per table on SQLite (`tables.purchase_writes`), and the payers'
balances settle once as in any batch.

Anything this path does not expect (an operation finished elsewhere, a name taken since it
was accepted, an unexpected exception, one out of its bounds) raises `Fallback`, which rolls
the whole transaction back: the batch then runs on the general path, where each operation
gets its own outcome as before. Nothing of a batch commits but through one COMMIT, so
exactly once and a worker killed mid-batch are as on the general path.
"""

from __future__ import annotations

import structlog

from rules.errors import RuleViolation
from rules.ledger import EntryKind
from rules.operations import OperationKind
from runtime.clock import clock
from runtime.ids import new_id
from tables import event_payloads as payloads
from tables import operations, product_names, products, test_clocks
from tables.engine import transaction
from tables.operations import OperationRecord
from tables.purchase_writes import PurchaseWrites
from worker import batch_memo, charging, metrics
from worker.actors.purchases import plan
from worker.execution import Bounds, Done, Ran

log = structlog.get_logger("tenure.worker")
SUCCEEDED, FAILED = operations.OperationStatus.SUCCEEDED, operations.OperationStatus.FAILED


class Fallback(Exception):
    """The batch is to run on the general path (savepoint by savepoint)."""


async def run_purchases(claimed: list[OperationRecord], bounds: Bounds) -> tuple[list[Ran], list[str]]:
    """Runs the claimed purchases as one set (see the module); answers each one's outcome and
    the payers whose tier was flagged. Fallback, with nothing written, when it cannot."""
    wall = clock.now()
    if any(bounds.exhausted(c.attempts - 1, c.created_at, wall, c.kind) for c in claimed):
        raise Fallback("an operation out of its bounds")
    with batch_memo.batch():
        async with transaction():
            locked = await operations.claim_many([c.id for c in claimed])
            if len(locked) != len(claimed):
                raise Fallback("an operation finished elsewhere")
            writes = PurchaseWrites()
            ran = [await _plan_one(op, writes) for op in sorted(locked, key=_payer_order)]
            wrote_products, wrote_operations = await writes.write()
            if wrote_operations != len(ran) or wrote_products != sum(r.outcome == SUCCEEDED for r in ran):
                raise Fallback("a name taken meanwhile")
            charged = await charging.settle_batch()
    accepted = {op.id: op.created_at for op in locked}
    codes = writes.codes()
    for each in ran:
        metrics.operation_finished(
            OperationKind.PURCHASE, each.outcome, (wall - accepted[each.operation_id]).total_seconds()
        )
        if each.outcome == FAILED:
            log.info(
                "operation_failed",
                operation_id=each.operation_id,
                kind=OperationKind.PURCHASE,
                code=codes[each.operation_id],
            )
        else:
            log.info("operation_succeeded", operation_id=each.operation_id, kind=OperationKind.PURCHASE)
    return ran, charged


async def _plan_one(op: OperationRecord, writes: PurchaseWrites) -> Ran:
    org_id = op.organization_id
    now = await test_clocks.now_for(org_id)
    ran = Ran(op.id, op.kind, org_id, FAILED, parent_id=op.parent_id)
    try:
        with batch_memo.operation():
            planned = await plan(op, now)
            product_id = new_id("prd")
            product = {**planned.product, "product_id": product_id}
            lines = await charging.stage(
                org_id,
                planned.quote.total,
                planned.params.payment_method,
                op.id,
                now,
                kind=EntryKind.PURCHASE,
                product=product,
            )
    except RuleViolation as failure:
        _failed(writes, op, failure.code, failure.message, now)
        return ran
    except Exception as exc:  # recorded and retried alone on the general path
        raise Fallback(f"unexpected {type(exc).__name__}") from exc
    params = planned.params
    writes.product(
        {
            "id": product_id,
            "kind": planned.kind.kind,
            "name": params.name,
            "organization": org_id,
            "client": params.client_id,
            "reseller": org_id if params.client_id else None,
            "expires_at": planned.quote.expires_at,
            "autorenew": True,
            "state": products.ProductState.ACTIVE,
            "created_at": now,
        },
        product_names.name_key(planned.kind.kind, params.name, planned.org.sandbox),
        planned.schedule,
        planned.org.sandbox,
    )
    writes.ledger_lines(lines)
    result = planned.result(product_id)
    writes.event(new_id("evt"), "product.purchased", org_id, product_id, op.id, planned.event(product_id), now)
    succeeded = payloads.OperationSucceeded(kind=op.kind, result=result)
    writes.event(new_id("evt"), "operation.succeeded", org_id, product_id, op.id, succeeded, now)
    writes.activity_row(new_id("act"), op, "operation.succeeded", product_id, params.client_id, now)
    writes.finish(op.id, SUCCEEDED, now, result=result, product_id=product_id)
    ran.outcome, ran.done = SUCCEEDED, Done(result=result, product_id=product_id)
    return ran


def _failed(writes: PurchaseWrites, op: OperationRecord, code: str, message: str, now) -> None:
    data = payloads.OperationFailed(kind=op.kind, error=payloads.ErrorData(code=code, message=message))
    writes.event(new_id("evt"), "operation.failed", op.organization_id, op.product_id, op.id, data, now)
    client_id = (op.params or {}).get("client_id")
    writes.activity_row(new_id("act"), op, "operation.failed", op.product_id, client_id, now)
    writes.finish(op.id, FAILED, now, code=code, message=message)


def _payer_order(op: OperationRecord) -> tuple[str, str]:
    return (op.organization_id, op.id)
