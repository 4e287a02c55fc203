"""The Home screen's figures, computed in a handful of indexed queries.

Everything is aggregated by the database where it is portable (counts, sums, group-by on a
column); time arithmetic (MTTA/MTTR, hourly buckets) is done in Python on the few rows of a
bounded window, because SQLite and PostgreSQL disagree on date functions. `now` is a parameter so
that tests and snapshots freeze time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core.cron import next_run_after
from batchops_core.enums import IncidentStatus, Role, RunStatus, Severity, UploadStatus
from batchops_core.errors import ValidationFailed
from batchops_core.infra.clock import db_now
from batchops_core.infra.config import Settings
from batchops_core.models import Incident, Job, JobRun, Upload, User, WorkerHeartbeat
from batchops_core.permissions import Action, Actor, require

OPEN_STATUSES = (IncidentStatus.OPEN, IncidentStatus.IN_PROGRESS)
DONE_UPLOADS = (UploadStatus.PUBLISHED, UploadStatus.PARTIAL)
MTT_WINDOW = timedelta(days=30)
MTT_SAMPLE = 5_000


@dataclass(frozen=True)
class HourBucket:
    start: datetime
    succeeded: int
    failed: int


@dataclass(frozen=True)
class Firing:
    job_id: int
    name: str
    at: datetime


@dataclass(frozen=True)
class WorkerHealth:
    alive: int
    stale: int
    jobs_running: int
    queue_depth: int
    """Uploads waiting for a worker plus queued runs."""


@dataclass(frozen=True)
class Card:
    """A role-specific card: a title and a few label/value lines."""

    title: str
    lines: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Dashboard:
    now: datetime
    uploads_today: int
    uploads_week: int
    success_rate: float | None
    """Published or partial over finished uploads in the last 7 days; None when none finished."""
    rows_processed: int
    open_by_severity: dict[Severity, int]
    mtta: timedelta | None
    mttr: timedelta | None
    workers: WorkerHealth
    next_firings: tuple[Firing, ...]
    runs_per_hour: tuple[HourBucket, ...]
    cards: tuple[Card, ...] = field(default=())

    @property
    def open_incidents(self) -> int:
        return sum(self.open_by_severity.values())


def _start_of_day(now: datetime, tz: str) -> datetime:
    local = now.astimezone(ZoneInfo(tz))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(now.tzinfo)


def _mean(deltas: list[timedelta]) -> timedelta | None:
    return sum(deltas, timedelta()) / len(deltas) if deltas else None


async def _upload_figures(
    session: AsyncSession, now: datetime, tz: str
) -> tuple[int, int, float | None, int]:
    week_ago = now - timedelta(days=7)
    today = await session.scalar(
        select(func.count(Upload.id)).where(Upload.created_at >= _start_of_day(now, tz))
    )
    rows = await session.execute(
        select(Upload.status, func.count(Upload.id), func.coalesce(func.sum(Upload.rows_out), 0))
        .where(Upload.created_at >= week_ago)
        .group_by(Upload.status)
    )
    by_status = {UploadStatus(s): (n, r) for s, n, r in rows}
    week = sum(n for n, _ in by_status.values())
    done = sum(by_status.get(s, (0, 0))[0] for s in DONE_UPLOADS)
    failed = by_status.get(UploadStatus.FAILED, (0, 0))[0]
    rate = done / (done + failed) if done + failed else None
    processed = sum(int(by_status.get(s, (0, 0))[1] or 0) for s in DONE_UPLOADS)
    return today or 0, week, rate, processed


async def _incident_figures(
    session: AsyncSession, now: datetime
) -> tuple[dict[Severity, int], timedelta | None, timedelta | None]:
    rows = await session.execute(
        select(Incident.severity, func.count(Incident.id))
        .where(Incident.status.in_(OPEN_STATUSES))
        .group_by(Incident.severity)
    )
    counts = dict.fromkeys(Severity, 0) | {Severity(s): n for s, n in rows}
    recent = await session.execute(
        select(Incident.created_at, Incident.acknowledged_at, Incident.resolved_at)
        .where(Incident.created_at >= now - MTT_WINDOW)
        .order_by(Incident.created_at.desc())
        .limit(MTT_SAMPLE)
    )
    acks, fixes = [], []
    for created, acked, resolved in recent:
        if acked is not None:
            acks.append(acked - created)
        if resolved is not None:
            fixes.append(resolved - created)
    return counts, _mean(acks), _mean(fixes)


async def _worker_health(session: AsyncSession, settings: Settings, now: datetime) -> WorkerHealth:
    fresh_after = now - timedelta(seconds=settings.worker.stale_after_seconds)
    beats = (
        await session.execute(select(WorkerHeartbeat.heartbeat_at, WorkerHeartbeat.jobs_running))
    ).all()
    alive = [b for b in beats if b.heartbeat_at >= fresh_after]
    queued_uploads = await session.scalar(
        select(func.count(Upload.id)).where(Upload.status == UploadStatus.QUEUED)
    )
    queued_runs = await session.scalar(
        select(func.count(JobRun.id)).where(JobRun.status == RunStatus.QUEUED)
    )
    return WorkerHealth(
        alive=len(alive),
        stale=len(beats) - len(alive),
        jobs_running=sum(b.jobs_running for b in alive),
        queue_depth=(queued_uploads or 0) + (queued_runs or 0),
    )


def _next_fire(cron: str, tz: str, after: datetime) -> datetime | None:
    """The schedule module's DST-aware computation; a broken line simply has no next firing."""
    try:
        return next_run_after(cron, tz, after)
    except (ValidationFailed, ValueError):
        return None


async def _next_firings(session: AsyncSession, now: datetime, n: int = 5) -> tuple[Firing, ...]:
    jobs = await session.execute(
        select(Job.id, Job.name, Job.cron, Job.timezone, Job.next_run_at)
        .where(Job.enabled.is_(True))
        .order_by(Job.next_run_at)
        .limit(500)
    )
    firings = []
    for job in jobs:
        at = job.next_run_at if job.next_run_at and job.next_run_at >= now else None
        at = at or _next_fire(job.cron, job.timezone, now)
        if at is not None:
            firings.append(Firing(job_id=job.id, name=job.name, at=at))
    return tuple(sorted(firings, key=lambda f: f.at)[:n])


async def _runs_per_hour(session: AsyncSession, now: datetime) -> tuple[HourBucket, ...]:
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    rows = await session.execute(
        select(JobRun.status, JobRun.created_at).where(
            JobRun.created_at >= start,
            JobRun.status.in_((RunStatus.SUCCEEDED, RunStatus.FAILED)),
        )
    )
    ok = [0] * 24
    bad = [0] * 24
    for status, created in rows:
        slot = int((created - start).total_seconds() // 3600)
        if 0 <= slot < 24:
            (ok if status == RunStatus.SUCCEEDED else bad)[slot] += 1
    return tuple(
        HourBucket(start=start + timedelta(hours=i), succeeded=ok[i], failed=bad[i])
        for i in range(24)
    )


async def _role_cards(session: AsyncSession, actor: Actor, now: datetime) -> tuple[Card, ...]:
    if actor.role is Role.ADMIN:
        users = (
            await session.execute(select(User.active, User.email_verified, User.locked_until))
        ).all()
        jobs = (await session.execute(select(Job.enabled, Job.last_status))).all()
        return (
            Card(
                "Users",
                (
                    ("accounts", str(len(users))),
                    ("disabled", str(sum(not u.active for u in users))),
                    (
                        "locked",
                        str(sum(bool(u.locked_until and u.locked_until > now) for u in users)),
                    ),
                    ("unverified", str(sum(not u.email_verified for u in users))),
                ),
            ),
            Card(
                "Schedules",
                (
                    ("enabled", f"{sum(j.enabled for j in jobs)}/{len(jobs)}"),
                    ("last run failed", str(sum(j.last_status == RunStatus.FAILED for j in jobs))),
                ),
            ),
        )
    if actor.role is Role.MODERATOR:
        unassigned = await session.scalar(
            select(func.count(Incident.id)).where(
                Incident.status == IncidentStatus.OPEN, Incident.assignee_id.is_(None)
            )
        )
        mine = await session.scalar(
            select(func.count(Incident.id)).where(
                Incident.status.in_(OPEN_STATUSES), Incident.assignee_id == actor.id
            )
        )
        return (
            Card(
                "To triage",
                (("open, unassigned", str(unassigned or 0)), ("assigned to me", str(mine or 0))),
            ),
        )
    recent = await session.execute(
        select(Upload.id, Upload.filename, Upload.status)
        .where(Upload.uploader_id == actor.id)
        .order_by(Upload.created_at.desc())
        .limit(4)
    )
    lines = tuple((f"#{u.id} {u.filename}"[:28], UploadStatus(u.status).value) for u in recent)
    return (Card("My uploads", lines or (("none yet", "press 2 to upload"),)),)


@dataclass(frozen=True)
class UploadNotice:
    id: int
    filename: str
    status: str


@dataclass(frozen=True)
class IncidentNotice:
    id: int
    title: str


@dataclass(frozen=True)
class Notices:
    uploads: tuple[UploadNotice, ...]
    incidents: tuple[IncidentNotice, ...]


async def my_notices(session: AsyncSession, *, actor: Actor, since: datetime) -> Notices:
    """My uploads that finished and open incidents assigned to me, changed since `since`.

    The TUI polls this when there is no Redis to tell it; it de-duplicates what it already showed.
    """
    uploads = await session.execute(
        select(Upload.id, Upload.filename, Upload.status)
        .where(
            Upload.uploader_id == actor.id,
            Upload.status.in_(UploadStatus.finals()),
            Upload.updated_at >= since,
        )
        .limit(20)
    )
    incidents = await session.execute(
        select(Incident.id, Incident.title)
        .where(
            Incident.assignee_id == actor.id,
            Incident.status.in_(OPEN_STATUSES),
            Incident.updated_at >= since,
        )
        .limit(20)
    )
    return Notices(
        uploads=tuple(
            UploadNotice(u.id, u.filename, UploadStatus(u.status).value) for u in uploads
        ),
        incidents=tuple(IncidentNotice(i.id, i.title) for i in incidents),
    )


async def get_dashboard(
    session: AsyncSession, settings: Settings, *, actor: Actor, now: datetime | None = None
) -> Dashboard:
    """Every Home figure in one call; any signed-in role may read it."""
    require(actor, Action.VIEW_RUNS)
    now = now or await db_now(session)  # worker health compares heartbeats in database time
    today, week, rate, processed = await _upload_figures(session, now, settings.timezone)
    by_severity, mtta, mttr = await _incident_figures(session, now)
    return Dashboard(
        now=now,
        uploads_today=today,
        uploads_week=week,
        success_rate=rate,
        rows_processed=processed,
        open_by_severity=by_severity,
        mtta=mtta,
        mttr=mttr,
        workers=await _worker_health(session, settings, now),
        next_firings=await _next_firings(session, now),
        runs_per_hour=await _runs_per_hour(session, now),
        cards=await _role_cards(session, actor, now),
    )
