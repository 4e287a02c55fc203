"""Schedules screen and `batchops schedule`: list, read, create, edit, enable/disable, run now.

Any role may read schedules (`VIEW_RUNS`) and run one now (`RUN_SCHEDULES`); creating,
editing, enabling and disabling need `EDIT_SCHEDULES` (admins) and write an audit row.
Every change validates the cron line, the timezone, the task and its arguments, and recomputes
`next_run_at` from now: the daemon reads schedules from the database, so an edit takes effect
at its next poll without a restart.

Every change emits `schedule.updated` on its unit of work, so the event leaves after the commit
whoever called: the TUI, `batchops schedule …` or a script.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from batchops_core import audit
from batchops_core.cron import (
    firing_job_id,
    next_run_after,
    next_runs,
    validate_cron,
)
from batchops_core.enums import RunStatus
from batchops_core.errors import NotFound, ValidationFailed
from batchops_core.infra import events
from batchops_core.infra.clock import utcnow
from batchops_core.infra.db import Database, UnitOfWork
from batchops_core.models import Job, User
from batchops_core.permissions import Action, Actor, require
from batchops_core.services.pagination import Page, page_window, text_search
from batchops_core.worker.automation.registry import validate_task
from batchops_core.worker.dispatcher import Dispatcher

EDITABLE = frozenset({"name", "description", "task", "arguments", "cron", "timezone", "enabled"})


@dataclass(frozen=True)
class ScheduleRow:
    id: int
    name: str
    description: str
    task: str
    arguments: dict[str, Any]
    cron: str
    timezone: str
    enabled: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_status: RunStatus | None
    owner: str | None
    updated_at: datetime

    @classmethod
    def of(cls, job: Job, owner: str | None) -> ScheduleRow:
        return cls(
            id=job.id,
            name=job.name,
            description=job.description,
            task=job.task,
            arguments=dict(job.arguments or {}),
            cron=job.cron,
            timezone=job.timezone,
            enabled=job.enabled,
            next_run_at=job.next_run_at,
            last_run_at=job.last_run_at,
            last_status=job.last_status,
            owner=owner,
            updated_at=job.updated_at,
        )


def schedule_event(row: ScheduleRow) -> events.Event:
    """The event to publish after committing a change to this schedule."""
    return events.Event(
        type="schedule.updated", id=row.id, status="enabled" if row.enabled else "disabled"
    )


def _changed(uow: UnitOfWork, row: ScheduleRow) -> ScheduleRow:
    uow.emit(schedule_event(row))
    return row


def preview_next_runs(cron: str, tz: str, n: int = 5) -> list[datetime]:
    """The next `n` firing times from now (UTC-aware); ValidationFailed explains a bad line.

    No database: cheap enough to call on every keystroke of the cron field.
    """
    validate_cron(cron, tz)
    return next_runs(cron, tz, utcnow(), n=n)


async def list_schedules(
    session: UnitOfWork,
    *,
    actor: Actor,
    offset: int = 0,
    limit: int = 50,
    search: str | None = None,
) -> Page[ScheduleRow]:
    """Schedules by name; `search` matches name, task or description."""
    require(actor, Action.VIEW_RUNS)
    offset, limit = page_window(offset, limit)
    matches = text_search(search, Job.name, Job.task, Job.description)
    conditions = [] if matches is None else [matches]
    total = await session.scalar(select(func.count(Job.id)).where(*conditions)) or 0
    rows = await session.execute(
        select(Job, User.username)
        .outerjoin(User, User.id == Job.owner_id)
        .where(*conditions)
        .order_by(Job.name, Job.id)
        .offset(offset)
        .limit(limit)
    )
    return Page(
        items=[ScheduleRow.of(job, owner) for job, owner in rows],
        total=total,
        offset=offset,
        limit=limit,
    )


async def _load(session: UnitOfWork, job_id: int) -> Job:
    job = await session.get(Job, job_id)
    if job is None:
        raise NotFound(f"there is no schedule #{job_id}.")
    return job


async def _row(session: UnitOfWork, job: Job) -> ScheduleRow:
    await session.flush()
    owner = (
        await session.scalar(select(User.username).where(User.id == job.owner_id))
        if job.owner_id
        else None
    )
    return ScheduleRow.of(job, owner)


async def get_schedule(session: UnitOfWork, *, actor: Actor, job_id: int) -> ScheduleRow:
    require(actor, Action.VIEW_RUNS)
    return await _row(session, await _load(session, job_id))


async def find_schedule(session: UnitOfWork, *, actor: Actor, ref: str) -> ScheduleRow:
    """A schedule by id (`12`) or exact name (case-insensitive), for scripts."""
    require(actor, Action.VIEW_RUNS)
    text = ref.strip()
    job = await session.get(Job, int(text)) if text.isdigit() else None
    if job is None:
        job = await session.scalar(select(Job).where(func.lower(Job.name) == text.lower()))
    if job is None:
        raise NotFound(f"there is no schedule named or numbered '{ref}'.")
    return await _row(session, job)


async def _check_name(session: UnitOfWork, name: str, job_id: int | None = None) -> str:
    clean = " ".join((name or "").split())
    if not clean:
        raise ValidationFailed("the schedule name is empty; give it a short name.")
    if len(clean) > 100:
        raise ValidationFailed("the schedule name is longer than 100 characters.")
    clash = await session.scalar(
        select(Job.id).where(func.lower(Job.name) == clean.lower(), Job.id != (job_id or -1))
    )
    if clash is not None:
        raise ValidationFailed(f"a schedule named '{clean}' already exists (#{clash}).")
    return clean


async def create_schedule(
    session: UnitOfWork,
    *,
    actor: Actor,
    name: str,
    task: str,
    cron: str,
    timezone: str = "UTC",
    arguments: dict[str, Any] | None = None,
    description: str = "",
    enabled: bool = True,
) -> ScheduleRow:
    require(actor, Action.EDIT_SCHEDULES)
    clean_name = await _check_name(session, name)
    cron_line = " ".join(cron.split())
    tz = timezone.strip()
    validate_cron(cron_line, tz)
    args = await validate_task(session, task, arguments)
    job = Job(
        name=clean_name,
        description=description.strip(),
        task=task.strip(),
        arguments=args,
        cron=cron_line,
        timezone=tz,
        enabled=enabled,
        owner_id=actor.id,
        next_run_at=next_run_after(cron_line, tz, utcnow()) if enabled else None,
    )
    session.add(job)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="schedule.create",
        target_type="schedule",
        target_id=job.id,
        target_name=job.name,
        detail=f"{job.task} '{job.cron}' {job.timezone}",
    )
    return _changed(session, await _row(session, job))


async def update_schedule(
    session: UnitOfWork, *, actor: Actor, job_id: int, **changes: Any
) -> ScheduleRow:
    """Change any of name, description, task, arguments, cron, timezone, enabled."""
    require(actor, Action.EDIT_SCHEDULES)
    unknown = sorted(set(changes) - EDITABLE)
    if unknown:
        raise ValidationFailed(
            f"cannot change {', '.join(unknown)}; editable: {', '.join(sorted(EDITABLE))}."
        )
    job = await _load(session, job_id)
    before = (job.name, job.task, job.arguments, job.cron, job.timezone, job.enabled)
    if "name" in changes:
        job.name = await _check_name(session, changes["name"], job.id)
    if "description" in changes:
        job.description = str(changes["description"] or "").strip()
    cron = " ".join(str(changes.get("cron", job.cron)).split())
    tz = str(changes.get("timezone", job.timezone)).strip()
    validate_cron(cron, tz)
    task = str(changes.get("task", job.task)).strip()
    args = changes.get("arguments", job.arguments if "task" not in changes else {})
    job.arguments = await validate_task(session, task, args)
    job.task, job.cron, job.timezone = task, cron, tz
    if "enabled" in changes:
        job.enabled = bool(changes["enabled"])
    timing_changed = (cron, tz, job.enabled) != (before[3], before[4], before[5])
    if timing_changed or (job.enabled and job.next_run_at is None):
        job.next_run_at = next_run_after(cron, tz, utcnow()) if job.enabled else None
    after = (job.name, job.task, job.arguments, job.cron, job.timezone, job.enabled)
    labels = ("name", "task", "arguments", "cron", "timezone", "enabled")
    diff = [f"{k}: {b!r} -> {a!r}" for k, b, a in zip(labels, before, after, strict=True) if a != b]
    audit.record(
        session,
        actor=actor,
        action="schedule.update",
        target_type="schedule",
        target_id=job.id,
        target_name=job.name,
        detail="; ".join(diff) or "no change",
    )
    return _changed(session, await _row(session, job))


async def set_schedule_enabled(
    session: UnitOfWork, *, actor: Actor, job_id: int, enabled: bool
) -> ScheduleRow:
    """Enable (next firing computed from now: no catch-up of the disabled period) or disable."""
    require(actor, Action.EDIT_SCHEDULES)
    job = await _load(session, job_id)
    if job.enabled != enabled:
        job.enabled = enabled
        job.next_run_at = next_run_after(job.cron, job.timezone, utcnow()) if enabled else None
        audit.record(
            session,
            actor=actor,
            action="schedule.enable" if enabled else "schedule.disable",
            target_type="schedule",
            target_id=job.id,
            target_name=job.name,
        )
    return _changed(session, await _row(session, job))


async def run_now(db: Database, dispatcher: Dispatcher, *, actor: Actor, job_id: int) -> str:
    """Enqueue one firing of the schedule now; returns its deterministic arq job id.

    The firing time is now, to the second, so pressing "run now" twice in the same second fires
    once. The task is `run_schedule(job_id, scheduled_for_iso)`; the schedule's own
    `next_run_at` is not touched.
    """
    require(actor, Action.RUN_SCHEDULES)
    now = utcnow().replace(microsecond=0)
    async with db.unit() as session:
        job = await _load(session, job_id)
        audit.record(
            session,
            actor=actor,
            action="schedule.run_now",
            target_type="schedule",
            target_id=job.id,
            target_name=job.name,
        )
        session.after_commit(lambda: dispatcher.run_schedule(job_id, now))
        session.emit(events.Event(type="schedule.updated", id=job_id, status="queued"))
    return firing_job_id(job_id, now, prefix=dispatcher.settings.redis.prefix)
