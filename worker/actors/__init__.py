"""Declares tenure's actors on a broker (no global broker, nothing at import time)."""

from __future__ import annotations

import dramatiq

from rules.operations import OperationKind
from runtime.settings import Settings
from worker.actors.batches import execute_batch
from worker.actors.clients import upsert_client
from worker.actors.lifecycle import advance_state, attempt_autorenew, send_reminder
from worker.actors.purchases import purchase
from worker.actors.releases import release
from worker.actors.renewals import renewal
from worker.actors.test_clocks import advance as advance_test_clock
from worker.actors.tiers import recalculate
from worker.actors.transfers import transfer
from worker.batching import follow_up, run_batch
from worker.execution import Bounds, Handler, run_operation
from worker.queue import (
    ACTOR_FOR_KIND,
    AUTORENEW_ACTOR,
    DELIVER_ACTOR,
    LIFECYCLE_QUEUE,
    OPERATIONS_QUEUE,
    REMINDER_ACTOR,
    STATE_ACTOR,
    TIER_ACTOR,
    TIERS_QUEUE,
    WEBHOOKS_QUEUE,
    Sender,
)
from worker.webhooks.addresses import Resolver, resolve
from worker.webhooks.client import WebhookClient
from worker.webhooks.delivery import deliver_many
from worker.webhooks.fanout import fan_out

HANDLERS: dict[str, Handler] = {
    OperationKind.PURCHASE: purchase,
    OperationKind.RENEWAL: renewal,
    OperationKind.TRANSFER: transfer,
    OperationKind.RELEASE: release,
    OperationKind.CLIENT_UPSERT: upsert_client,
}


async def run_now(kind: str, operation_id: str) -> None:
    """Runs one recorded operation in this process, now, as its actor would (exactly once: a
    second call finds it done). For data seeded before any worker runs (`tenure demo`)."""
    await run_operation(operation_id, HANDLERS[kind])


def declare(
    broker: dramatiq.Broker, sender: Sender, settings: Settings | None = None, resolver: Resolver = resolve
) -> dict[str, dramatiq.Actor]:
    """`resolver` answers the addresses of webhook hosts (the system's unless a test gives one)."""
    settings = settings or Settings()
    declared: dict[str, dramatiq.Actor] = {}
    webhook_client = WebhookClient(settings.allow_private_webhook_urls, resolver)
    broker.add_middleware(webhook_client)
    bounds = Bounds.of(settings)

    def operation_actor(kind: str, handler: Handler) -> None:
        async def execute(operation_ids: str | list[str], retake: int = 0) -> None:  # one id, or a batch's
            await run_batch(kind, operation_ids, handler, bounds, sender, settings.relay_stall_seconds, retake=retake)

        name = ACTOR_FOR_KIND[kind]
        execute.__name__ = execute.__qualname__ = name.replace(".", "_")
        declared[name] = dramatiq.actor(execute, actor_name=name, queue_name=OPERATIONS_QUEUE, broker=broker)

    for kind, handler in HANDLERS.items():
        operation_actor(kind, handler)

    async def renewal_batches_execute(operation_id: str) -> None:
        if await execute_batch(operation_id, sender):
            await fan_out(sender, operation_id=operation_id)

    batch_actor = ACTOR_FOR_KIND[OperationKind.RENEWAL_BATCH]
    declared[batch_actor] = dramatiq.actor(
        renewal_batches_execute, actor_name=batch_actor, queue_name=OPERATIONS_QUEUE, broker=broker
    )

    async def test_clocks_advance(operation_id: str, retake: int = 0) -> None:  # `retake`: relay messages
        await advance_test_clock(operation_id, webhook_client.client, bounds)

    clock_actor = ACTOR_FOR_KIND[OperationKind.TEST_CLOCK]
    declared[clock_actor] = dramatiq.actor(
        test_clocks_advance, actor_name=clock_actor, queue_name=OPERATIONS_QUEUE, broker=broker, time_limit=3_600_000
    )

    async def tiers_recalculate(organization_id: str) -> None:
        if await recalculate(organization_id):
            await fan_out(sender, organization_id=organization_id)

    async def webhooks_deliver(delivery_ids: list[str] | str) -> None:
        ids = [delivery_ids] if isinstance(delivery_ids, str) else delivery_ids  # one id: older messages
        outcomes = await deliver_many(ids, webhook_client.client)
        for disabled_for in sorted({org for _, org in outcomes.values() if org}):
            await fan_out(sender, organization_id=disabled_for)  # tell the organization's other endpoints

    def product_batch_actor(name: str, handle) -> None:
        async def run(product_ids: list[str]) -> None:
            for product_id in product_ids:
                await handle(product_id)

        run.__name__ = run.__qualname__ = name.replace(".", "_")
        declared[name] = dramatiq.actor(run, actor_name=name, queue_name=LIFECYCLE_QUEUE, broker=broker)

    product_batch_actor(STATE_ACTOR, advance_state)
    product_batch_actor(REMINDER_ACTOR, send_reminder)

    async def autorenew(product_id: str) -> None:  # followed up as every other operation is
        ran = await attempt_autorenew(product_id, bounds)
        if ran is not None:
            await follow_up(sender, [ran])

    product_batch_actor(AUTORENEW_ACTOR, autorenew)

    declared[TIER_ACTOR] = dramatiq.actor(
        tiers_recalculate, actor_name=TIER_ACTOR, queue_name=TIERS_QUEUE, broker=broker
    )
    declared[DELIVER_ACTOR] = dramatiq.actor(
        webhooks_deliver, actor_name=DELIVER_ACTOR, queue_name=WEBHOOKS_QUEUE, broker=broker, max_retries=3
    )
    return declared
