"""Leases: rows taken by a conditional UPDATE, so that of two takers racing for a row one wins.

`take_due` is the one pattern behind every lease here (due products for a sweep, pending
deliveries for the fan-out, unsent operations for the relay): read the ids of the rows that are
free, then stamp them in one UPDATE that checks the same condition again; a row another taker
stamped in between no longer matches and is left out. `stamp_where` is its second half alone.

Scheduler jobs use it through `JobLease`: one replica at a time runs a job that must not run
twice at once. A lease is a row per job with its holder and an expiry: a second replica finds
it held and does nothing; if the holder dies, the lease runs out and a later run takes it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from piccolo.columns import Column, Timestamptz, Varchar
from piccolo.custom_types import Combinable
from piccolo.table import Table


async def stamp_where(
    table: type[Table], values: dict[Column | str, Any], condition: Combinable, returning: tuple[Column, ...]
) -> list[dict]:
    """Sets `values` on the rows matching `condition`, in one statement; answers the rows it
    changed (their `returning` columns)."""
    return await table.update(values).where(condition).returning(*returning)


async def take_due(
    table: type[Table],
    *,
    free: Combinable,
    stamp: dict[Column | str, Any],
    order_by: Column,
    limit: int,
    returning: tuple[Column, ...] = (),
) -> list[dict]:
    """Takes up to `limit` rows matching `free`, the first by `order_by`: stamps them with
    `stamp` (which must make them no longer `free`) and answers the ones it took (their primary
    key and `returning` columns). Two statements; a row another taker stamped in between is
    left out, so no row is taken twice."""
    key = table._meta.primary_key
    found = await table.select(key).where(free).order_by(order_by).limit(limit)
    if not found:
        return []
    ids = [r[key._meta.name] for r in found]
    return await stamp_where(table, stamp, key.is_in(ids) & free, (key, *returning))


class JobLease(Table, tablename="job_leases"):
    job = Varchar(length=40, primary_key=True)
    holder = Varchar(length=40, default="", help_text="The scheduler replica holding the lease; empty: nobody yet.")
    leased_until = Timestamptz(help_text="Held until then; a holder that died loses it at that instant.")


async def take(job: str, holder: str, now: datetime, until: datetime) -> bool:
    """Takes the job's lease until `until` unless another holder has it beyond `now`.

    Call outside any transaction: the row is created (once per job), then taken by a
    conditional UPDATE; of two replicas racing for it, one takes it.
    """
    await JobLease.insert(JobLease(job=job, holder="", leased_until=now)).on_conflict(
        target=JobLease.job, action="DO NOTHING"
    )
    return await _set(job, holder, until, (JobLease.leased_until <= now) | (JobLease.holder == holder))


async def extend(job: str, holder: str, until: datetime) -> bool:
    """Pushes the lease to `until` while `holder` has it; False if another replica took it."""
    return await _set(job, holder, until, JobLease.holder == holder)


async def release(job: str, holder: str, now: datetime) -> None:
    await JobLease.update({JobLease.leased_until: now}).where((JobLease.job == job) & (JobLease.holder == holder))


async def _set(job: str, holder: str, until: datetime, condition: Combinable) -> bool:
    values: dict[Column | str, Any] = {JobLease.holder: holder, JobLease.leased_until: until}
    return bool(await stamp_where(JobLease, values, (JobLease.job == job) & condition, (JobLease.job,)))
