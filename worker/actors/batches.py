"""renewal_batches.execute: a bulk renewal, one exactly-once renewal operation per item.

The first run makes the batch `running` and creates its children in one transaction: one
renewal operation per item whose product is in the organization, keyed by batch id +
product id (a re-run never makes a second child), holding the batch's account (so each
re-checks its permissions). After commit the children are sent; any the broker did not
take, the relay sends. Each child runs as any renewal does (its own guard, charge, events).

A child that finishes looks at its batch (`worker.batching.follow_up`): when none of its siblings is left unfinished it
sends the batch again, and that run finishes the batch with each item's outcome. A batch
that missed that message stays `running` and is re-sent by the relay once it has been quiet
for the stall time; every run that finds children still at work stamps it, so the relay
leaves an active batch alone.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from rules.errors import TargetMissing
from rules.operations import OperationKind
from runtime.clock import clock
from tables import event_payloads as payloads
from tables import (
    events,
    operation_activity,
    operation_batches,
    operation_params,
    operations,
    products,
)
from tables.engine import transaction
from tables.operation_params import RenewalBatchParams, RenewalItem, RenewalParams
from tables.operations import OperationRecord
from worker import metrics
from worker.queue import Sender
from worker.relay import send_operations

log = structlog.get_logger("tenure.worker")

KIND = OperationKind.RENEWAL_BATCH


def child_key(batch_id: str, product_id: str) -> str:
    # Client keys are stored as "<organization id>:<key>": a key starting with an operation id never meets one.
    return f"{batch_id}:{product_id}"


async def _start(batch_id: str, now: datetime) -> list[str]:
    """Starts the batch once, creating its children; answers the ids of the children made now."""
    async with transaction():
        batch = await operation_batches.start_batch(batch_id, now)
        if batch is None:
            return []
        items = operation_params.read(batch, RenewalBatchParams).items
        owned = await products.many([item.product_id for item in items])
        rows = [
            operations.new_row(
                OperationKind.RENEWAL,
                batch.organization_id,
                now,
                account_id=batch.account_id,
                product_id=item.product_id,
                parent_id=batch_id,
                idem_key=child_key(batch_id, item.product_id),
                enqueued_at=now,
                params=RenewalParams(
                    years=item.years, current_expires_at=item.current_expires_at, payment_method=item.payment_method
                ),
            )
            for item in items
            if item.product_id in owned and owned[item.product_id].organization_id == batch.organization_id
        ]
        made = set(await operation_batches.insert_children(rows))
        await operation_activity.operations_accepted(
            [row for row in rows if row["id"] in made],
            await operation_activity.actor_of(batch_id),
            {pid: owned[pid].client_id for pid in owned},
        )
        return [row["id"] for row in rows if row["id"] in made]


def _outcome(item: RenewalItem, child: OperationRecord | None) -> dict:
    if child is None:  # not in the organization when the batch started: never touched
        missing = TargetMissing(f"no product {item.product_id!r} is in this organization")
        return {
            "product_id": item.product_id,
            "operation_id": None,
            "status": operations.OperationStatus.FAILED,
            "error": {"code": missing.code, "message": missing.message},
        }
    error = {"code": child.error_code, "message": child.error_message or ""} if child.error_code else None
    return {"product_id": item.product_id, "operation_id": child.id, "status": child.status, "error": error}


async def _finish_if_done(batch_id: str) -> bool:
    """Finishes the batch once every child has finished; True if this call finished it."""
    now = clock.now()
    async with transaction():
        batch = await operations.claim(batch_id)  # running, row-locked; None once finished
        if batch is None:
            return False
        children = await operation_batches.children_of(batch_id)
        if any(child.status in operations.UNFINISHED for child in children):
            await operation_batches.touch(batch_id, now)
            return False
        by_product = {child.product_id: child for child in children}
        items = operation_params.read(batch, RenewalBatchParams).items
        outcomes = [_outcome(item, by_product.get(item.product_id)) for item in items]
        failed = sum(1 for outcome in outcomes if outcome["status"] != operations.OperationStatus.SUCCEEDED)
        counts = {"total_items": len(outcomes), "renewed_items": len(outcomes) - failed, "failed_items": failed}
        await operations.finish(batch_id, now, result={**counts, "items": outcomes})
        # The event carries the counts; the items are read on the operation (up to 1,000 of them).
        await events.record(
            "operation.succeeded",
            batch.organization_id,
            now,
            operation_id=batch_id,
            data=payloads.OperationSucceeded(kind=KIND, result=counts),
        )
    log.info("operation_succeeded", operation_id=batch_id, kind=KIND, **counts)
    metrics.operation_finished(KIND, operations.OperationStatus.SUCCEEDED, (now - batch.created_at).total_seconds())
    return True


async def execute_batch(batch_id: str, sender: Sender) -> bool:
    """One run of the batch actor: start it (once), send what it made, finish it if all is done."""
    created = await _start(batch_id, clock.now())
    if created:
        sent = await send_operations(sender, [(OperationKind.RENEWAL, child_id) for child_id in created])
        log.info("renewal_batch_started", operation_id=batch_id, children=len(created), sent=sent)
    return await _finish_if_done(batch_id)
