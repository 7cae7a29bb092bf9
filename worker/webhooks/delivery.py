"""webhooks.deliver: signed attempts of a batch of deliveries, sent concurrently on the worker's
one client, each stored, then success, a scheduled retry, or giving up."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
import msgspec
import structlog
from standardwebhooks import Webhook

from rules import webhooks as hooks
from runtime.clock import clock
from tables import deliveries, delivery_batches, events, test_clocks, webhooks
from tables import event_payloads as payloads
from tables.engine import transaction
from worker import metrics
from worker.webhooks.addresses import NotPublic

log = structlog.get_logger("tenure.webhooks")
EXCERPT_BYTES = 2048
USER_AGENT = "tenure-webhooks/1"
# POSTs of one batch in flight at once. A batch (worker.queue.DELIVERY_BATCH) starts all its
# attempts' leases together: ceil(DELIVERY_BATCH / CONCURRENCY) x the 15 s timeout must stay
# well inside webhooks.LEASE (2 x 15 s against 2 minutes).
CONCURRENCY = 25


@dataclass
class Answer:
    status_code: int | None = None
    duration_ms: int = 0
    excerpt: str = ""
    error: str | None = None
    retry_after: timedelta | None = None


def payload(event: dict, sandbox: bool = False) -> bytes:
    return msgspec.json.encode(hooks.body_of(event, sandbox))


def signed_headers(secrets: str | list[str], message_id: str, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers; with several secrets (a rotation's overlap), one `v1,`
    signature each, space-separated in the one header: a receiver accepts any that matches."""
    # The signature's timestamp is the real time: receivers check it against their own clocks.
    sent_at = datetime.now(UTC)
    secrets = [secrets] if isinstance(secrets, str) else secrets
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": " ".join(Webhook(secret).sign(message_id, sent_at, body.decode()) for secret in secrets),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def retry_after(header: str | None, now: datetime) -> timedelta | None:
    if not header:
        return None
    if header.strip().isdigit():
        return timedelta(seconds=int(header.strip()))
    try:
        return max(timedelta(0), parsedate_to_datetime(header) - now)
    except (TypeError, ValueError):
        return None


async def post(client: httpx.AsyncClient, url: str, headers: dict[str, str], body: bytes) -> Answer:
    """One POST through `client` (worker.webhooks.client: it connects to checked addresses only)."""
    started = time.monotonic()
    try:
        response = await client.post(url, content=body, headers=headers)
    except NotPublic as exc:  # refused before any connection: nothing was sent, nothing came back
        return Answer(error=f"refused: {exc}"[:200])
    except httpx.HTTPError as exc:
        return Answer(duration_ms=int((time.monotonic() - started) * 1000), error=f"{type(exc).__name__}: {exc}"[:200])
    return Answer(
        status_code=response.status_code,
        duration_ms=int((time.monotonic() - started) * 1000),
        excerpt=response.content[:EXCERPT_BYTES].decode(errors="replace"),
        retry_after=retry_after(response.headers.get("retry-after"), datetime.now(UTC)),
    )


async def deliver(delivery_id: str, client: httpx.AsyncClient) -> tuple[str, str | None]:
    """One delivery's attempt (see `deliver_many`): (what happened, organization disabled for)."""
    return (await deliver_many([delivery_id], client))[delivery_id]


async def deliver_many(
    delivery_ids: list[str], client: httpx.AsyncClient, concurrency: int = CONCURRENCY
) -> dict[str, tuple[str, str | None]]:
    """Makes one attempt of each delivery that is due, at most `concurrency` POSTs at once;
    answers delivery id -> (what happened, organization whose endpoint it disabled, or None).

    Taking them costs four statements for the whole batch (the deliveries, their endpoints,
    their events, one conditional UPDATE that starts every attempt and its lease), and the
    successes are settled together in one transaction; a failure is settled on its own
    (retry schedule, endpoint health, disabling). `client` is this worker process's
    `pinned_client` (worker.webhooks.client): one for all its deliveries.
    """
    delivery_ids = list(dict.fromkeys(delivery_ids))
    outcomes: dict[str, tuple[str, str | None]] = {d: ("gone", None) for d in delivery_ids}
    found = await delivery_batches.contexts(delivery_ids, clock.now())
    wanted = [
        d
        for d, (delivery, hook, _) in found.items()
        if delivery["status"] == webhooks.DeliveryStatus.PENDING and hook["enabled"]
    ]
    outcomes.update({d: ("skipped", None) for d in found})
    attempts: dict[str, int] = {}
    if wanted:
        async with transaction():
            attempts = await delivery_batches.claim_attempts(wanted, clock.now())
    gate = asyncio.Semaphore(concurrency)
    sandboxes = await test_clocks.sandboxes([hook["organization_id"] for _, hook, _ in found.values()])

    async def attempt(delivery_id: str) -> Answer:
        _, hook, event = found[delivery_id]
        body = payload(event, hook["organization_id"] in sandboxes)
        async with gate:
            try:
                return await post(client, hook["url"], signed_headers(hook["secrets"], event["id"], body), body)
            except Exception as exc:  # noqa: BLE001 - one delivery's surprise must not leave its batch unsettled
                log.exception("webhook_post_failed", delivery_id=delivery_id)
                return Answer(error=f"{type(exc).__name__}: {exc}"[:200])

    # Oldest event first: with `concurrency` 1 (a test clock's advance) they arrive in that order.
    taken = sorted(attempts, key=lambda d: (found[d][2]["created_at"], found[d][2]["id"]))
    answers = dict(zip(taken, await asyncio.gather(*(attempt(d) for d in taken)), strict=True))
    now = clock.now()
    delivered = [d for d in taken if hooks.outcome(answers[d].status_code) == "delivered"]
    if delivered:
        async with transaction():
            await delivery_batches.settle_delivered(
                [(d, found[d][1]["id"], attempt_fields(answers[d])) for d in delivered], now
            )
    for delivery_id in delivered:
        outcomes[delivery_id] = ("delivered", None)
        noted(found[delivery_id], attempts[delivery_id], answers[delivery_id], "delivered")
    for delivery_id in taken:
        if delivery_id not in delivered:
            outcomes[delivery_id] = await settle_failure(
                found[delivery_id], attempts[delivery_id], answers[delivery_id], now
            )
    return outcomes


def attempt_fields(answer: Answer) -> dict:
    return {
        "status_code": answer.status_code,
        "duration_ms": answer.duration_ms,
        "response_excerpt": answer.excerpt,
        "error": answer.error,
    }


def noted(context: tuple[dict, dict, dict], attempt: int, answer: Answer, verdict: str) -> None:
    delivery, hook, event = context
    metrics.delivery_attempted(verdict if verdict != "retry" or answer.status_code else "error")
    log.info(
        "webhook_attempt",
        delivery_id=delivery["id"],
        endpoint_id=hook["id"],
        event_id=event["id"],
        operation_id=event["operation_id"],
        attempt=attempt,
        status_code=answer.status_code,
        verdict=verdict,
        error=answer.error,
    )


async def settle_failure(
    context: tuple[dict, dict, dict], attempt: int, answer: Answer, now: datetime
) -> tuple[str, str | None]:
    """An attempt that was not delivered: gone, a scheduled retry, or given up (disabling the endpoint)."""
    delivery, hook, _ = context
    delivery_id = delivery["id"]
    verdict = hooks.outcome(answer.status_code)
    disabled_reason = None
    async with transaction():
        await deliveries.record_attempt(
            delivery_id,
            now,
            status_code=answer.status_code,
            duration_ms=answer.duration_ms,
            excerpt=answer.excerpt,
            error=answer.error,
        )
        if verdict == "gone":
            await deliveries.settle(delivery_id, now, webhooks.DeliveryStatus.FAILED, None)
            disabled_reason = "gone"
        else:
            failing_since = await webhooks.endpoint_failed(hook["id"], now)
            next_at = hooks.next_attempt_at(attempt, now, random.randint(-100, 100), answer.retry_after)
            if hooks.should_disable(failing_since, now):
                await deliveries.settle(delivery_id, now, webhooks.DeliveryStatus.FAILED, None)
                disabled_reason = "failing_for_5_days"
            else:
                await deliveries.settle(
                    delivery_id,
                    now,
                    webhooks.DeliveryStatus.PENDING if next_at else webhooks.DeliveryStatus.FAILED,
                    next_at,
                )
        if disabled_reason and await webhooks.disable_endpoint(hook["id"], disabled_reason, now):
            await events.record(
                "endpoint.disabled",
                hook["organization_id"],
                now,
                data=payloads.EndpointDisabled(endpoint_id=hook["id"], url=hook["url"], reason=disabled_reason),
            )
        else:
            disabled_reason = None
    noted(context, attempt, answer, verdict)
    return verdict, hook["organization_id"] if disabled_reason else None
