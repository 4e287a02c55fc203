"""The database is the scheduler's store: which firings are due, and claiming each exactly once.

`due_jobs` reads enabled jobs whose `next_run_at` has passed; `advance_job` moves `next_run_at` to
the first firing **after now** with a conditional `UPDATE … WHERE next_run_at = :fired_for`, so
after downtime a missed firing runs once (not once per missed minute) and, of several daemons,
only the one whose update matched may enqueue it (`dispatch_loop.py` does both in one
transaction). "Now" is the database's clock (`db_now`): a daemon whose host runs ahead must not
fire a schedule early, nor one behind late.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core.cron import next_run_after
from batchops_core.enums import RunStatus
from batchops_core.errors import ValidationFailed
from batchops_core.infra.clock import db_now
from batchops_core.infra.db import Database
from batchops_core.models import Job

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DueFiring:
    """One schedule whose firing time has passed and which should be enqueued once."""

    job_id: int
    task: str
    arguments: dict[str, Any]
    scheduled_for: datetime
    lateness_seconds: float


async def due_jobs(session: AsyncSession, now: datetime, *, limit: int = 1_000) -> list[DueFiring]:
    """Enabled schedules whose `next_run_at` is at or before `now`, oldest first.

    One firing per schedule however long the daemon was down: the caller enqueues it and then
    calls `advance_job`, which skips every other missed firing.
    """
    rows = await session.execute(
        select(Job.id, Job.task, Job.arguments, Job.next_run_at)
        .where(Job.enabled.is_(True), Job.next_run_at.is_not(None), Job.next_run_at <= now)
        .order_by(Job.next_run_at, Job.id)
        .limit(limit)
    )
    return [
        DueFiring(
            job_id=job_id,
            task=task,
            arguments=dict(arguments or {}),
            scheduled_for=when,
            lateness_seconds=max(0.0, (now - when).total_seconds()),
        )
        for job_id, task, arguments, when in rows
    ]


async def advance_job(
    session: AsyncSession, *, job_id: int, fired_for: datetime, now: datetime
) -> bool:
    """Move `next_run_at` past `now`, only if it still equals `fired_for`.

    Returns True when this call advanced the schedule (the caller owns the firing), False when
    another daemon already did, or the schedule was edited or disabled in the meantime.
    """
    job = (
        await session.execute(select(Job.cron, Job.timezone).where(Job.id == job_id))
    ).one_or_none()
    if job is None:
        return False
    cron, tz = job
    after = max(now, fired_for)
    try:
        following = next_run_after(cron, tz, after)
    except ValidationFailed as exc:
        log.warning("schedule %s can no longer fire and stops: %s", job_id, exc)
        following = None  # a schedule that can no longer fire stops instead of looping
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.next_run_at == fired_for)
        .values(next_run_at=following)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def record_firing_result(
    session: AsyncSession, *, job_id: int, status: RunStatus, finished_at: datetime
) -> None:
    """Store the outcome of a schedule's latest run (`last_run_at`, `last_status`)."""
    await session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(last_run_at=finished_at, last_status=status)
        .execution_options(synchronize_session=False)
    )


async def claim_due_firings(
    db: Database, now: datetime | None = None
) -> list[tuple[DueFiring, str]]:
    """Claim every due firing as a daemon would (each in its own transaction), with the
    schedule's name; a firing another daemon claimed first is left out. `now` defaults to the
    database's clock."""
    async with db.unit() as session:
        now = now or await db_now(session)
        due = await due_jobs(session, now)
    claimed = []
    for firing in due:
        async with db.unit() as session:
            if not await advance_job(
                session, job_id=firing.job_id, fired_for=firing.scheduled_for, now=now
            ):
                continue
            name = await session.scalar(select(Job.name).where(Job.id == firing.job_id))
        claimed.append((firing, name or "?"))
    return claimed
