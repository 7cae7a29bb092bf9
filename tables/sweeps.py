"""A record of each scheduler job run, for the ops page and metrics."""

from datetime import datetime

from piccolo.columns import Integer, Timestamptz, Varchar
from piccolo.table import Table

from runtime.ids import new_id


class SweepRun(Table, tablename="sweep_runs"):
    id = Varchar(length=40, primary_key=True)
    job = Varchar(length=40, index=True, help_text="The sweep: states, reminders, autorenew or retention.")
    started_at = Timestamptz(index=True)
    duration_ms = Integer(default=0)
    items = Integer(default=0, help_text="How many due items this run took.")
    error = Varchar(length=300, null=True, default=None, help_text="Why the run failed; null: it did not.")


async def record(job: str, started_at: datetime, duration_ms: int, items: int, error: str | None = None) -> None:
    await SweepRun.insert(
        SweepRun(id=new_id("swp"), job=job, started_at=started_at, duration_ms=duration_ms, items=items, error=error)
    )


async def latest() -> list[dict]:
    """The last run of each job."""
    rows = await SweepRun.select().order_by(SweepRun.started_at, ascending=False).limit(200)
    seen: dict[str, dict] = {}
    for row in rows:
        seen.setdefault(row["job"], row)
    return sorted(seen.values(), key=lambda r: r["job"])


async def forget_before(cutoff: datetime) -> int:
    """Drops run records older than `cutoff` (a job records a run every minute)."""
    deleted = await SweepRun.delete().where(SweepRun.started_at < cutoff).returning(SweepRun.id)
    return len(deleted)
