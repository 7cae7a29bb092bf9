"""webhooks.deliver: one signed attempt, stored, then success, a scheduled retry, or giving up."""

from __future__ import annotations

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
from rules.lifecycle import rfc3339
from tables import events, webhooks
from tables.clock import clock
from tables.engine import transaction
from worker import metrics
from worker.webhooks.addresses import NotPublic

log = structlog.get_logger("tenure.webhooks")
EXCERPT_BYTES = 2048
USER_AGENT = "tenure-webhooks/1"


@dataclass
class Answer:
    status_code: int | None = None
    duration_ms: int = 0
    excerpt: str = ""
    error: str | None = None
    retry_after: timedelta | None = None


def payload(event: dict) -> bytes:
    return msgspec.json.encode({
        "type": event["type"], "timestamp": rfc3339(event["created_at"]),
        "data": {**event["data"], "organization_id": event["organization_id"],
                 "product_id": event["product_id"], "operation_id": event["operation_id"]},
    })


def signed_headers(secrets: str | list[str], message_id: str, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers; with several secrets (a rotation's overlap), one `v1,`
    signature each, space-separated in the one header: a receiver accepts any that matches."""
    # The signature's timestamp is the real time: receivers check it against their own clocks.
    sent_at = datetime.now(UTC)
    secrets = [secrets] if isinstance(secrets, str) else secrets
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": " ".join(Webhook(secret).sign(message_id, sent_at, body.decode())
                                      for secret in secrets),
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
        return Answer(duration_ms=int((time.monotonic() - started) * 1000),
                      error=f"{type(exc).__name__}: {exc}"[:200])
    return Answer(status_code=response.status_code,
                  duration_ms=int((time.monotonic() - started) * 1000),
                  excerpt=response.content[:EXCERPT_BYTES].decode(errors="replace"),
                  retry_after=retry_after(response.headers.get("retry-after"), datetime.now(UTC)))


async def deliver(delivery_id: str, client: httpx.AsyncClient) -> tuple[str, str | None]:
    """Makes one attempt if this delivery is due and leased; returns (what happened, org disabled for).

    `client` is this worker process's `pinned_client` (worker.webhooks.client).
    """
    context = await webhooks.delivery_context(delivery_id, clock.now())
    if context is None:
        return "gone", None
    delivery, hook, event = context
    if delivery["status"] != "pending" or not hook["enabled"]:
        return "skipped", None
    async with transaction():
        if not await webhooks.claim_attempt(delivery_id, delivery["attempts"], clock.now()):
            return "skipped", None
    attempt = delivery["attempts"] + 1
    body = payload(event)
    answer = await post(client, hook["url"], signed_headers(hook["secrets"], event["id"], body), body)
    now = clock.now()
    verdict = hooks.outcome(answer.status_code)
    disabled_reason = None
    async with transaction():
        await webhooks.record_attempt(delivery_id, now, status_code=answer.status_code,
                                      duration_ms=answer.duration_ms, excerpt=answer.excerpt,
                                      error=answer.error)
        if verdict == "delivered":
            await webhooks.settle(delivery_id, now, "succeeded", None)
            await webhooks.endpoint_succeeded(hook["id"])
        elif verdict == "gone":
            await webhooks.settle(delivery_id, now, "failed", None)
            disabled_reason = "gone"
        else:
            failing_since = await webhooks.endpoint_failed(hook["id"], now)
            next_at = hooks.next_attempt_at(attempt, now, random.randint(-100, 100), answer.retry_after)
            if hooks.should_disable(failing_since, now):
                await webhooks.settle(delivery_id, now, "failed", None)
                disabled_reason = "failing_for_5_days"
            else:
                await webhooks.settle(delivery_id, now, "pending" if next_at else "failed", next_at)
        if disabled_reason and await webhooks.disable_endpoint(hook["id"], disabled_reason, now):
            await events.record("endpoint.disabled", hook["organization_id"], now,
                                data={"endpoint_id": hook["id"], "url": hook["url"],
                                      "reason": disabled_reason})
        else:
            disabled_reason = None
    metrics.delivery_attempted(verdict if verdict != "retry" or answer.status_code else "error")
    log.info("webhook_attempt", delivery_id=delivery_id, endpoint_id=hook["id"], event_id=event["id"],
             operation_id=event["operation_id"], attempt=attempt, status_code=answer.status_code,
             verdict=verdict, error=answer.error)
    return verdict, hook["organization_id"] if disabled_reason else None
