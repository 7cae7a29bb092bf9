"""Sending operations to the workers (the outbox's other half): the relay takes those to send,
under a lease, and a failed send leaves them to its next tick."""

from datetime import datetime

from tables import leases
from tables.operations import UNFINISHED, Operation


async def take_for_relay(
    cutoff: datetime,
    now: datetime,
    limit: int,
    *,
    resend_before: datetime | None = None,
    max_attempts: int | None = None,
    created_before: datetime | None = None,
) -> list[dict]:
    """Unfinished operations to send again, stamped now (a lease: two relays never both take one):
    never sent, or sent before `resend_before` (default `cutoff`); and, to be failed instead,
    the ones stalled since `cutoff` past their bounds (`max_attempts` attempts, or tried and
    accepted before `created_before`)."""
    due = Operation.enqueued_at.is_null() | (
        Operation.enqueued_at < (cutoff if resend_before is None else min(cutoff, resend_before))
    )
    bounds = None
    if max_attempts is not None:
        bounds = Operation.attempts >= max_attempts
    if created_before is not None:
        aged = (Operation.attempts >= 1) & (Operation.created_at < created_before)
        bounds = aged if bounds is None else (bounds | aged)
    if bounds is not None:
        due = due | ((Operation.enqueued_at < cutoff) & bounds)
    unfinished = Operation.status.is_in(list(UNFINISHED))
    return await leases.take_due(
        Operation,
        free=unfinished & due,
        stamp={Operation.enqueued_at: now},
        order_by=Operation.created_at,
        limit=limit,
        returning=(Operation.kind, Operation.attempts, Operation.created_at),
    )


async def unsent_many(op_ids: list[str]) -> None:
    """Their sends failed: let the relay pick them up at its next tick."""
    await Operation.update({Operation.enqueued_at: None}).where(Operation.id.is_in(op_ids))
