"""What the `/ops` page shows and how it is drawn: the dashboard's data (queues, dead letters,
failed operations, unhealthy webhook endpoints, the scheduler jobs' last runs), each source
read on its own so that one failing shows as an error in its section, never a 500 or a hung
page; and the Jinja2 templates with their filters. The routes are in web/routes/ops_page.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import jinja2
import structlog
from litestar import MediaType, Request, Response

from tables import operations, sweeps, webhooks

log = structlog.get_logger("tenure.ops_page")

FAILED_SHOWN = 20
DEAD_LETTERS_SHOWN = 50
SOURCE_TIMEOUT_S = 5  # a dead broker or database shows as an error in its section, never a hung page
NO_STORE = {"Cache-Control": "no-store"}
RECENT = timedelta(hours=1)  # a failure newer than this turns its summary tile red

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


# --- formatting ----------------------------------------------------------------


def _as_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def utc(value: Any) -> str:
    moment = _as_datetime(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def ago(value: Any, now: datetime | None = None) -> str:
    moment = _as_datetime(value)
    if moment is None:
        return ""
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def short_json(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, separators=(", ", ": "), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


TEMPLATES.filters.update(utc=utc, ago=ago, short_json=short_json)


def html(template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> Response:
    body = TEMPLATES.get_template(template).render(**context)
    return Response(body, status_code=status, media_type=MediaType.HTML, headers={**NO_STORE, **(headers or {})})


# --- what the page shows ---------------------------------------------------------


async def _source(name: str, load) -> tuple[Any, str | None]:
    """Runs one loader; a failure becomes that section's error message, not a 500."""
    try:
        with anyio.fail_after(SOURCE_TIMEOUT_S):
            return await load(), None
    except Exception as exc:  # show what failed; the other sections still render
        log.warning("ops_page_source_failed", source=name, error=f"{type(exc).__name__}: {exc}")
        return None, f"{type(exc).__name__}: {exc}"[:300]


async def dashboard(request: Request) -> dict[str, Any]:
    monitor = request.app.state.monitor
    results: dict[str, tuple[Any, str | None]] = {}

    async def load(name: str, loader) -> None:
        results[name] = await _source(name, loader)

    def read_broker() -> tuple[list, list]:
        # One thread, one call after the other: a RabbitMQ channel must not be shared across threads.
        return monitor.depths(), monitor.dead_letters(DEAD_LETTERS_SHOWN)

    async with anyio.create_task_group() as group:
        group.start_soon(load, "broker", lambda: anyio.to_thread.run_sync(read_broker))
        group.start_soon(
            load, "failed", lambda: operations.page_for_ops(operations.OperationStatus.FAILED, None, None, FAILED_SHOWN)
        )
        group.start_soon(load, "webhooks", lambda: webhooks.unhealthy_endpoints(50))
        group.start_soon(load, "sweeps", sweeps.latest)

    data = {name: (value if value is not None else []) for name, (value, _) in results.items()}
    errors = {name: error for name, (_, error) in results.items()}
    data["queues"], data["dead_letters"] = data.pop("broker") or ([], [])
    errors["queues"] = errors["dead_letters"] = errors.pop("broker")
    now = datetime.now(UTC)
    last_failure = _as_datetime(data["failed"][0].finished_at) if data["failed"] else None
    return {
        "now": now,
        "recent_failure": bool(last_failure and now - last_failure < RECENT),
        "queues": [q.to_dict() for q in data["queues"]],
        "dead_letters": [d.to_dict() for d in data["dead_letters"]],
        "failed": data["failed"],
        "webhooks": data["webhooks"],
        "sweeps": data["sweeps"],
        "errors": errors,
        "broker": type(monitor).__name__.removesuffix("Monitor").lower(),
        "failed_shown": FAILED_SHOWN,
        "dead_letters_shown": DEAD_LETTERS_SHOWN,
    }
