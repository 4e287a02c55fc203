"""Incidents: a failure becomes one incident (with its ticket and timeline), once per window.

Recording (called by the pipeline runner and the automation tasks, in their transaction):

* The fingerprint is source + stage + error code. A failure whose fingerprint matches an
  incident that is still open or in progress and was last seen within
  `settings.incidents.dedup_window_minutes` adds an occurrence (count, last seen, timeline line,
  the newest upload/run) to it instead of opening a new one. The window slides with each
  occurrence: a failure that repeats every few minutes stays one incident. Resolved incidents are
  never reused: a failure after a fix is news.
* The best active KnownError (see `known_errors`) sets severity, category, root cause and fix
  text and names the remediation the daemon may try.

Lifecycle: `open → in_progress → resolved → archived`, `resolved → open` (reopen), and
`open → resolved` directly (an automatic remediation, or a person resolving at once). Anything
else raises `InvalidTransition`. The lifecycle rules live here; `services.incidents` adds the
permissions and the plain-data views.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import false, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core.enums import IncidentStatus, Severity, Stage, TicketStatus
from batchops_core.errors import BatchOpsError
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import IncidentSettings, Settings
from batchops_core.known_errors import KnownErrorInfo, match_known_error
from batchops_core.models import Incident, IncidentEvent, KnownError, Ticket
from batchops_core.permissions import Actor

TASK_TIMEOUT = "TASK_TIMEOUT"
TASK_FAILED = "TASK_FAILED"
ACTIVE_STATUSES = (IncidentStatus.OPEN, IncidentStatus.IN_PROGRESS)


class InvalidTransition(BatchOpsError):
    """The incident's current status does not allow the requested action."""


class TimelineKind(StrEnum):
    OPENED = "opened"
    OCCURRENCE = "occurrence"
    KNOWN_ERROR = "known_error"
    ASSIGNED = "assigned"
    ANALYZED = "analyzed"
    RETRIED = "retried"
    AUTO_RETRIED = "auto_retried"
    RESOLVED = "resolved"
    AUTO_RESOLVED = "auto_resolved"
    ARCHIVED = "archived"
    REOPENED = "reopened"


TRANSITIONS: dict[IncidentStatus, frozenset[IncidentStatus]] = {
    IncidentStatus.OPEN: frozenset({IncidentStatus.IN_PROGRESS, IncidentStatus.RESOLVED}),
    IncidentStatus.IN_PROGRESS: frozenset({IncidentStatus.RESOLVED}),
    IncidentStatus.RESOLVED: frozenset({IncidentStatus.ARCHIVED, IncidentStatus.OPEN}),
    IncidentStatus.ARCHIVED: frozenset(),
}
_STATUS_WORDS = {
    IncidentStatus.OPEN: "open",
    IncidentStatus.IN_PROGRESS: "in progress",
    IncidentStatus.RESOLVED: "resolved",
    IncidentStatus.ARCHIVED: "archived",
}


def require_status(incident: Incident, allowed: tuple[IncidentStatus, ...], doing: str) -> None:
    """Raise InvalidTransition unless the incident is in one of the allowed statuses."""
    if incident.status not in allowed:
        wanted = " or ".join(_STATUS_WORDS[s] for s in allowed)
        raise InvalidTransition(
            f"incident #{incident.id} is {_STATUS_WORDS[incident.status]}; "
            f"only an incident that is {wanted} can be {doing}."
        )


def move(incident: Incident, target: IncidentStatus, doing: str) -> None:
    """Change the status along the lifecycle, or raise InvalidTransition."""
    if target not in TRANSITIONS[incident.status]:
        allowed = tuple(s for s, targets in TRANSITIONS.items() if target in targets)
        require_status(incident, allowed, doing)
    incident.status = target


def acknowledge(incident: Incident, now: datetime) -> None:
    """First human (or remediation) action: open → in progress, and the MTTA clock stops."""
    if incident.acknowledged_at is None:
        incident.acknowledged_at = now
    if incident.status is IncidentStatus.OPEN:
        incident.status = IncidentStatus.IN_PROGRESS


def add_event(
    session: AsyncSession,
    incident_id: int,
    kind: TimelineKind,
    detail: str = "",
    *,
    actor: Actor | None = None,
    at: datetime | None = None,
) -> None:
    session.add(
        IncidentEvent(
            incident_id=incident_id,
            kind=kind.value,
            detail=detail,
            actor_id=actor.id if actor else None,
            created_at=at or utcnow(),
        )
    )


async def ticket_of(session: AsyncSession, incident_id: int) -> Ticket | None:
    return await session.scalar(
        select(Ticket).where(Ticket.incident_id == incident_id).order_by(Ticket.id).limit(1)
    )


async def close_ticket(session: AsyncSession, incident_id: int, now: datetime, note: str) -> None:
    ticket = await ticket_of(session, incident_id)
    if ticket is not None and ticket.status is TicketStatus.OPEN:
        ticket.status = TicketStatus.CLOSED
        ticket.closed_at = now
        ticket.notes = (ticket.notes + "\n" if ticket.notes else "") + note


async def reopen_ticket(session: AsyncSession, incident_id: int) -> None:
    ticket = await ticket_of(session, incident_id)
    if ticket is not None:
        ticket.status = TicketStatus.OPEN
        ticket.closed_at = None


def resolve(incident: Incident, *, root_cause: str, corrective_action: str, now: datetime) -> None:
    move(incident, IncidentStatus.RESOLVED, "resolved")
    incident.root_cause = root_cause
    incident.corrective_action = corrective_action
    if incident.acknowledged_at is None:
        incident.acknowledged_at = now
    incident.resolved_at = now


# ---------------------------------------------------------------------------- recording failures


@dataclass(frozen=True)
class FailureInfo:
    """What a failing stage or task knows about its failure."""

    code: str
    message: str
    stage: Stage | None = None
    hint: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedFailure:
    """The outcome of recording one failure."""

    incident_id: int
    created: bool
    """False when the failure was added as an occurrence of an open incident."""
    occurrences: int
    known_error: KnownErrorInfo | None


def fingerprint(source: str, failure: FailureInfo) -> str:
    key = f"{source}|{failure.stage or ''}|{failure.code}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _window(settings: Settings | None) -> timedelta:
    minutes = (settings.incidents if settings else IncidentSettings()).dedup_window_minutes
    return timedelta(minutes=max(0, minutes))


def _pointer(upload_id: int | None, run_id: int | None, job_id: int | None) -> str:
    parts = [
        f"{name} #{value}"
        for name, value in (("upload", upload_id), ("run", run_id), ("schedule", job_id))
        if value is not None
    ]
    return f" ({', '.join(parts)})" if parts else ""


async def _serialize(session: AsyncSession, key: str) -> None:
    """Make concurrent recorders of the same fingerprint take turns, so that two workers failing
    the same way at the same moment add up to one incident, not two.

    PostgreSQL: a transaction-scoped advisory lock on the fingerprint. SQLite: a no-op write takes
    the database's write lock before the lookup (callers have usually written already, e.g. the
    failed upload, and then hold it anyway).
    """
    if session.bind.dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(int(key[:15], 16))))
    else:
        await session.execute(
            update(Incident)
            .where(false())
            .values(occurrences=Incident.occurrences)
            .execution_options(synchronize_session=False)
        )


async def record_failure(
    session: AsyncSession,
    *,
    source: str,
    failure: FailureInfo,
    upload_id: int | None = None,
    run_id: int | None = None,
    job_id: int | None = None,
    settings: Settings | None = None,
    default_category: str = "data",
    now: datetime | None = None,
) -> RecordedFailure:
    """Open an incident (with ticket and timeline) or add an occurrence to the open one."""
    now = now or utcnow()
    key = fingerprint(source, failure)
    window = _window(settings)
    await _serialize(session, key)
    existing = await session.scalar(
        select(Incident)
        .where(
            Incident.fingerprint == key,
            Incident.status.in_(ACTIVE_STATUSES),
            Incident.last_seen_at >= now - window,
        )
        .order_by(Incident.last_seen_at.desc(), Incident.id.desc())
        .limit(1)
        .with_for_update()
    )
    where = _pointer(upload_id, run_id, job_id)
    if existing is not None and window > timedelta(0):
        existing.occurrences += 1
        existing.last_seen_at = now
        existing.message = failure.message
        existing.details = dict(failure.details)
        existing.upload_id = upload_id if upload_id is not None else existing.upload_id
        existing.run_id = run_id if run_id is not None else existing.run_id
        existing.job_id = job_id if job_id is not None else existing.job_id
        add_event(
            session,
            existing.id,
            TimelineKind.OCCURRENCE,
            f"occurred again (#{existing.occurrences}){where}: {failure.message}",
            at=now,
        )
        known = None
        if existing.known_error_id is not None:
            row = await session.get(KnownError, existing.known_error_id)
            known = KnownErrorInfo.of(row) if row is not None else None
        return RecordedFailure(existing.id, False, existing.occurrences, known)

    known = await match_known_error(
        session, code=failure.code, message=failure.message, stage=failure.stage
    )
    title = f"{source}: {failure.code} at {failure.stage or 'task'}"
    incident = Incident(
        title=title[:255],
        source=source[:100],
        upload_id=upload_id,
        run_id=run_id,
        job_id=job_id,
        stage=failure.stage,
        error_code=failure.code[:64],
        message=failure.message,
        hint=failure.hint,
        details=dict(failure.details),
        fingerprint=key,
        severity=known.severity if known else Severity.MEDIUM,
        category=known.category if known else default_category,
        root_cause=known.root_cause if known else "",
        known_error_id=known.id if known else None,
        last_seen_at=now,
        created_at=now,
    )
    session.add(incident)
    await session.flush()
    session.add(Ticket(incident_id=incident.id, title=f"Follow up: {title}"[:255], created_at=now))
    add_event(session, incident.id, TimelineKind.OPENED, f"{failure.message}{where}", at=now)
    if known is not None:
        add_event(
            session,
            incident.id,
            TimelineKind.KNOWN_ERROR,
            f"matches known error '{known.name}': {known.fix}",
            at=now,
        )
    return RecordedFailure(incident.id, True, 1, known)


async def record_stage_failure(
    session: AsyncSession,
    *,
    source: str,
    failure: FailureInfo,
    upload_id: int | None = None,
    run_id: int | None = None,
    job_id: int | None = None,
    settings: Settings | None = None,
) -> int:
    """Record a failed pipeline stage; return the (new or de-duplicated) incident id.

    Pass `settings` so the configured de-duplication window applies (default 60 minutes).
    """
    recorded = await record_failure(
        session,
        source=source,
        failure=failure,
        upload_id=upload_id,
        run_id=run_id,
        job_id=job_id,
        settings=settings,
    )
    return recorded.incident_id


async def record_task_failure(
    session: AsyncSession,
    *,
    task: str,
    failure: FailureInfo,
    job_id: int | None = None,
    run_id: int | None = None,
    settings: Settings | None = None,
) -> int:
    """Record a failed or timed-out automation task (no upload); return the incident id.

    The source is `task:<name>`, so the same task failing the same way is one incident per
    window. Use code `TASK_TIMEOUT` for a task that exceeded its timeout.
    """
    recorded = await record_failure(
        session,
        source=f"task:{task}",
        failure=failure,
        run_id=run_id,
        job_id=job_id,
        settings=settings,
        default_category="automation",
    )
    return recorded.incident_id


async def resolve_task_incidents(
    session: AsyncSession, *, task: str, job_id: int, run_id: int, now: datetime | None = None
) -> list[int]:
    """A later run of the same schedule succeeded: resolve its open automation incidents.

    Matched by the task's incident source and the schedule (task + arguments), so a success of
    `ingest_department` for Fees never closes the Library's incident. Returns the ids resolved.
    """
    now = now or utcnow()
    open_ones = (
        await session.scalars(
            select(Incident).where(
                Incident.source == f"task:{task}"[:100],
                Incident.job_id == job_id,
                Incident.status.in_(ACTIVE_STATUSES),
            )
        )
    ).all()
    for incident in open_ones:
        action = f"run #{run_id} of the same schedule succeeded"
        resolve(
            incident,
            root_cause=incident.root_cause or f"{incident.error_code} (passed on a later run)",
            corrective_action=action,
            now=now,
        )
        add_event(session, incident.id, TimelineKind.AUTO_RESOLVED, action, at=now)
        await close_ticket(session, incident.id, now, f"Resolved automatically: {action}")
    return [i.id for i in open_ones]
