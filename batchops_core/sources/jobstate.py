"""The life of one (source, partition, day) job: claimed once, finished once, forced on demand.

A job is claimed by a conditional UPDATE (`status <> running` or a running job older than the
stale limit), so two workers told to fetch the same day do it once. A succeeded job is left
alone unless forced. `PROCESSOR_VERSION` is stamped on every job so records can be traced to the
code that produced them.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core.infra.clock import shared_now
from batchops_core.sources.models import JobStatus, SourceJob

PROCESSOR_VERSION = "sources-1"
STALE_RUNNING = timedelta(minutes=30)


async def ensure_job(session: AsyncSession, source_id: int, partition: str, day: date) -> int:
    """The id of the job for (source, partition, day), created queued if new."""
    found = await session.scalar(
        select(SourceJob.id).where(
            SourceJob.source_id == source_id,
            SourceJob.partition == partition,
            SourceJob.day == day,
        )
    )
    if found is not None:
        return int(found)
    try:
        async with session.begin_nested():
            job = SourceJob(
                source_id=source_id,
                partition=partition,
                day=day,
                processor_version=PROCESSOR_VERSION,
            )
            session.add(job)
            await session.flush()
            return job.id
    except IntegrityError:  # created meanwhile by another sync: use that one
        found = await session.scalar(
            select(SourceJob.id).where(
                SourceJob.source_id == source_id,
                SourceJob.partition == partition,
                SourceJob.day == day,
            )
        )
        return int(found)


async def claim(session: AsyncSession, job_id: int, *, force: bool, now: datetime) -> bool:
    """Move the job to running (attempt + 1) unless it succeeded (and not forced) or runs now."""
    allowed = [SourceJob.status.in_([JobStatus.QUEUED, JobStatus.FAILED])]
    if force:
        allowed.append(SourceJob.status.in_([JobStatus.SUCCEEDED, JobStatus.PROCESSING]))
    allowed.append(
        (SourceJob.status == JobStatus.RUNNING) & (SourceJob.started_at < now - STALE_RUNNING)
    )
    result = await session.execute(
        update(SourceJob)
        .where(SourceJob.id == job_id, or_(*allowed))
        .values(
            status=JobStatus.RUNNING,
            attempts=SourceJob.attempts + 1,
            started_at=now,
            finished_at=None,
            error=None,
            processor_version=PROCESSOR_VERSION,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


async def finish(
    session: AsyncSession,
    job_id: int,
    status: JobStatus,
    *,
    error: str | None = None,
    **values: Any,
) -> None:
    now = shared_now()
    done = status in (JobStatus.SUCCEEDED, JobStatus.FAILED)
    await session.execute(
        update(SourceJob)
        .where(SourceJob.id == job_id)
        .values(
            status=status, error=error, finished_at=now if done else None, updated_at=now, **values
        )
        .execution_options(synchronize_session=False)
    )
