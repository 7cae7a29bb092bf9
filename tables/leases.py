"""Leases on scheduler jobs: one replica at a time runs a job that must not run twice at once.

A lease is a row per job with its holder and an expiry, taken and extended by conditional
UPDATEs (the same pattern as the product and delivery leases): a second replica finds
it held and does nothing; if the holder dies, the lease runs out and a later run takes it.
"""

from __future__ import annotations

from datetime import datetime

from piccolo.columns import Timestamptz, Varchar
from piccolo.table import Table


class JobLease(Table, tablename="job_leases"):
    job = Varchar(length=40, primary_key=True)
    holder = Varchar(length=40, default="")
    leased_until = Timestamptz()


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


async def _set(job: str, holder: str, until: datetime, condition) -> bool:
    taken = (
        await JobLease.update({JobLease.holder: holder, JobLease.leased_until: until})
        .where((JobLease.job == job) & condition)
        .returning(JobLease.job)
    )
    return bool(taken)
