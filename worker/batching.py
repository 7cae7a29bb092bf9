"""Operations executed in batches, and the one path that follows every executed operation.

A message names one operation, or up to OPERATION_BATCH of one kind (the web's outbox and the
relay group what they send). Its actor claims them, and with them other pending operations of
its kind up to BATCH_SIZE, in one statement (`tables.operation_claims`, committed on its own so that every
attempt counts), then runs them all in ONE transaction, each in a savepoint of it
(`run_started`): the lock and status check there keep each one exactly once; a business
failure (name taken, insufficient funds, credit limit) or an unexpected exception rolls back
to that operation's savepoint only, and the operation is recorded failed (or retrying) with
its own events in the same transaction, while the others commit together. A batch costs one
BEGIN and one COMMIT (one WAL flush) instead of one per operation. The claimed operations run
ordered by organization, so that two batches take their payers' balance rows in the same order.

A message whose operation another worker's batch already holds costs that one statement; one
whose operation a batch of this process has finished (committed) costs nothing: the process
remembers the last FINISHED_KEPT operations it finished (a finished operation never runs again,
so the memory can only spare a claim that would have found it finished). A
worker killed mid-batch commits nothing of it: the claimed operations stay `running`, and the
relay sends them again once their lease (the relay's stall time) has run out, and their claim
takes them. A batch whose transaction fails (the database gone, a deadlock) commits nothing
either: every operation it claimed gets a `retake` message.

After the batch, `follow_up` does for every operation that ran what used to follow each one:
one tier message per payer charged, the webhook fan-out (only where the organization has an
endpoint), and a bulk renewal told when its last item is done.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog

from rules.operations import OperationKind
from runtime.clock import clock
from tables import ledger, operation_batches, operation_claims, operations
from tables.engine import transaction, unreachable
from tables.operations import OperationRecord
from worker import batch_memo, charging, purchase_batch
from worker.broker import MAX_BACKOFF_MS, MIN_BACKOFF_MS
from worker.execution import Bounds, Handler, Ran, run_started
from worker.queue import OPERATION_BATCH, Sender, operation_message, tier_message
from worker.webhooks.fanout import fan_out_operations

log = structlog.get_logger("tenure.worker")

SETTLE_TRIES = 3  # runs of a batch whose payers' balances others keep spending under it
BATCH_SIZE = OPERATION_BATCH  # operations claimed per message: enough to amortize, few enough to share out
# A burst of charges for one payer queues one recalculation, run shortly after.
TIER_COALESCE_MS = 500
FINISHED_KEPT = 20_000  # operation ids a process remembers having finished (~2 MB)


class _Finished:
    """The ids of operations this process's batches finished, the oldest forgotten first."""

    def __init__(self, size: int) -> None:
        self.size, self.ids = size, dict[str, None]()

    def __contains__(self, operation_id: str) -> bool:
        return operation_id in self.ids

    def add(self, operation_ids: list[str]) -> None:
        self.ids.update(dict.fromkeys(operation_ids))
        while len(self.ids) > self.size:
            del self.ids[next(iter(self.ids))]


finished_here = _Finished(FINISHED_KEPT)


async def run_batch(
    kind: str,
    operation_ids: str | list[str],
    handler: Handler,
    bounds: Bounds,
    sender: Sender,
    lease_seconds: int,
    size: int = BATCH_SIZE,
    *,
    retake: int = 0,
) -> list[Ran]:
    """Claims the named operations (`operation_ids`: one id, or the list a message names) and,
    up to `size` in all, pending operations of `kind`; runs each once, follows them up.
    A message naming one operation raises that operation's unexpected exception (Dramatiq
    retries the message); any other operation that met one gets a message of its own, delayed
    as Dramatiq would.

    A batch that breaks off (the database gone mid-batch: nothing could record a failure)
    sends a `retake` message for the named operations and the claimed ones that did not run,
    so that they are taken again at once rather than after their lease (`retake`: how many
    such messages in a row led here, for the backoff)."""
    named = [operation_ids] if isinstance(operation_ids, str) else list(operation_ids)
    if not retake:  # messages for operations this process finished: nothing to claim
        named = [operation_id for operation_id in named if operation_id not in finished_here]
        if not named:
            return []
    now = clock.now()
    lease_cutoff = now - timedelta(seconds=lease_seconds)
    claimed: list[OperationRecord] = []
    ran: list[Ran] = []
    charged: list[str] = []
    try:
        claimed, named_locked = await operation_claims.claim_with_others(
            named, kind, now, lease_cutoff, max(size, len(named)), retake=retake > 0
        )
        for locked_id in named_locked:  # held by another transaction: wait for it, as a lone message would
            waited = await operation_claims.claim_named(locked_id, clock.now(), lease_cutoff, retake=retake > 0)
            claimed += [waited] if waited else []
        if claimed:
            ran, charged = await _run_claimed(claimed, handler, bounds, set_wise=kind == "purchase")
    except Exception:
        # Nothing of the batch committed: every operation it named or claimed is to be taken again.
        unrun = sorted(set(named) | {op.id for op in claimed})
        log.warning("operation_batch_broken_off", kind=kind, operation_ids=named, retaken=len(unrun), retake=retake + 1)
        delay = retry_delay_ms(retake + 1)
        for first in range(0, len(unrun), OPERATION_BATCH):
            retaken = unrun[first : first + OPERATION_BATCH]
            await asyncio.to_thread(sender.send, operation_message(kind, retaken, retake + 1), delay)
        raise
    finished_here.add([each.operation_id for each in ran if each.outcome in (*operations.FINISHED, "already_finished")])
    await follow_up(sender, ran, charged)
    named_error = None
    for each in ran:
        if each.error is None:
            continue
        if len(named) == 1 and each.operation_id == named[0]:
            named_error = each.error
        else:
            attempts = next(op.attempts for op in claimed if op.id == each.operation_id)
            await asyncio.to_thread(sender.send, operation_message(kind, each.operation_id), retry_delay_ms(attempts))
    if len(claimed) > 1:
        log.info("operation_batch", kind=kind, named=len(named), size=len(claimed), outcomes=_counts(ran))
    if named_error is not None:
        raise named_error
    return ran


async def _run_claimed(
    claimed: list[OperationRecord], handler: Handler, bounds: Bounds, *, set_wise: bool = False
) -> tuple[list[Ran], list[str]]:
    """Runs the claimed operations in one transaction, each in a savepoint, and settles the
    payers' balances last; answers what each came to and the payers whose tier was flagged.
    A balance spent by another transaction since the batch read it (the settlement's guard
    fails) rolls the batch back and runs it again on what is there now (SETTLE_TRIES times).

    `set_wise` (purchases): first as one set (`worker.purchase_batch`), which rolls back and
    leaves it to the savepoints when anything in it is unexpected."""
    if set_wise:
        try:
            return await purchase_batch.run_purchases(claimed, bounds)
        except Exception as exc:
            if unreachable(exc):
                raise
            log.info("operation_batch_set_wise_fallback", size=len(claimed), reason=str(exc))
    for attempt in range(1, SETTLE_TRIES + 1):
        ran: list[Ran] = []
        try:
            with batch_memo.batch():
                async with transaction():
                    for started in sorted(claimed, key=_payer_order):
                        ran.append(await run_started(started, handler, bounds))
                    charged = await charging.settle_batch()
            return ran, charged
        except (ledger.Overdraft, ledger.OverCredit) as moved:
            if attempt == SETTLE_TRIES:
                raise
            log.info("operation_batch_balance_moved", payer=str(moved), size=len(claimed), attempt=attempt)
    raise AssertionError("unreachable")


def _payer_order(started: OperationRecord) -> tuple[str, str]:
    """Operations of one organization together, organizations in one order for every batch:
    two batches lock the balance rows they share in the same order (no deadlock between them)."""
    return (started.organization_id, started.id)


def retry_delay_ms(attempts: int) -> int:
    """Dramatiq's backoff for an operation that failed `attempts` times (without its jitter)."""
    return min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** max(attempts - 1, 0))


async def follow_up(sender: Sender, ran: list[Ran], charged: list[str] | None = None) -> None:
    """Tier messages, webhook fan-out and bulk renewals told, after operations ran (`charged`:
    payers a batch's settlement flagged)."""
    payers = {payer for each in ran if each.done for payer in each.done.charged} | set(charged or ())
    for payer in sorted(payers):
        await asyncio.to_thread(sender.send, tier_message(payer), TIER_COALESCE_MS)
    finished = {
        each.operation_id: each.organization_id
        for each in ran
        if each.outcome in operations.FINISHED and each.organization_id
    }
    await fan_out_operations(sender, finished)
    parents = {each.parent_id for each in ran if each.parent_id and each.outcome in operations.FINISHED}
    for parent_id in sorted(parents):
        if not await operation_batches.unfinished_children(parent_id):
            await asyncio.to_thread(sender.send, operation_message(OperationKind.RENEWAL_BATCH, parent_id))


def _counts(ran: list[Ran]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for each in ran:
        counts[each.outcome] = counts.get(each.outcome, 0) + 1
    return counts
