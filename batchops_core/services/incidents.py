"""Incident queue and RCA workspace: list, read, assign, analyze, retry, resolve, archive, reopen.

Reading needs `VIEW_ISSUES`; every action needs `MANAGE_ISSUES` and adds a timeline line with
the actor and the time. Lifecycle rules live in `batchops_core.incidents`.

Events: the functions that take a session do **not** publish (their caller owns the
transaction, and an event published before the commit would send screens to stale rows). The
caller publishes `incident_event(detail)` after committing. `retry_incident` manages its own
transactions and publishes itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import aliased

from batchops_core.enums import (
    IncidentStatus,
    Remediation,
    Role,
    Severity,
    Stage,
    TicketStatus,
    UploadStatus,
)
from batchops_core.errors import NotFound, ValidationFailed
from batchops_core.incidents import (
    ACTIVE_STATUSES,
    InvalidTransition,
    TimelineKind,
    acknowledge,
    add_event,
    close_ticket,
    move,
    reopen_ticket,
    require_status,
    resolve,
    ticket_of,
)
from batchops_core.infra import events
from batchops_core.infra.clock import utcnow
from batchops_core.infra.db import Database, UnitOfWork
from batchops_core.known_errors import match_known_error
from batchops_core.models import Incident, IncidentEvent, KnownError, Upload, User
from batchops_core.permissions import Action, Actor, require
from batchops_core.services.pagination import Page, page_window, text_search
from batchops_core.worker.dispatcher import Dispatcher

__all__ = [
    "IncidentDetail",
    "IncidentRow",
    "InvalidTransition",
    "TicketInfo",
    "TimelineEntry",
    "UserRef",
    "analyze_incident",
    "archive_incident",
    "assign_incident",
    "get_incident",
    "incident_event",
    "list_assignees",
    "list_incidents",
    "reopen_incident",
    "resolve_incident",
    "retry_incident",
]

RETRYABLE_UPLOAD_STATUSES = (UploadStatus.FAILED, UploadStatus.PARTIAL)


@dataclass(frozen=True)
class UserRef:
    id: int
    username: str
    role: Role


@dataclass(frozen=True)
class IncidentRow:
    """One line of the incident queue."""

    id: int
    title: str
    source: str
    stage: Stage | None
    error_code: str
    severity: Severity
    category: str
    status: IncidentStatus
    assignee: str | None
    known_error: str | None
    occurrences: int
    retry_count: int
    upload_id: int | None
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str
    actor: str
    """The username, or `system` for the daemon and automatic remediation."""
    detail: str


@dataclass(frozen=True)
class TicketInfo:
    id: int
    title: str
    status: TicketStatus
    assignee: str | None
    notes: str
    created_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class IncidentDetail:
    """Everything the RCA workspace shows about one incident."""

    id: int
    title: str
    source: str
    status: IncidentStatus
    severity: Severity
    category: str
    stage: Stage | None
    error_code: str
    message: str
    hint: str
    details: dict[str, Any]
    """The failing stage's pointers: rows, columns, validation report paths."""
    upload_id: int | None
    upload_filename: str | None
    upload_status: UploadStatus | None
    run_id: int | None
    job_id: int | None
    assignee_id: int | None
    assignee: str | None
    known_error_id: int | None
    known_error: str | None
    known_error_fix: str
    remediation: Remediation
    root_cause: str
    corrective_action: str
    impact_summary: str
    analysis_notes: str
    retry_count: int
    auto_retry_count: int
    occurrences: int
    created_at: datetime
    last_seen_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    archived_at: datetime | None
    ticket: TicketInfo | None
    timeline: list[TimelineEntry] = field(default_factory=list)

    @property
    def time_to_acknowledge(self) -> timedelta | None:
        return self.acknowledged_at - self.created_at if self.acknowledged_at else None

    @property
    def time_to_resolve(self) -> timedelta | None:
        return self.resolved_at - self.created_at if self.resolved_at else None

    @property
    def can_retry(self) -> bool:
        return self.status in ACTIVE_STATUSES and self.upload_id is not None


def incident_event(detail: IncidentDetail) -> events.Event:
    """The event to publish after committing a change to this incident."""
    return events.Event(type="incident.updated", id=detail.id, status=detail.status.value)


# ---------------------------------------------------------------------------- reading


def _changed(uow: UnitOfWork, detail: IncidentDetail) -> IncidentDetail:
    uow.emit(incident_event(detail))
    return detail


async def list_incidents(
    session: UnitOfWork,
    *,
    actor: Actor,
    status: IncidentStatus | None = None,
    severity: Severity | None = None,
    assignee_id: int | None = None,
    search: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[IncidentRow]:
    """The incident queue, most recently seen first."""
    require(actor, Action.VIEW_ISSUES)
    offset, limit = page_window(offset, limit)
    conditions = []
    if status is not None:
        conditions.append(Incident.status == status)
    if severity is not None:
        conditions.append(Incident.severity == severity)
    if assignee_id is not None:
        conditions.append(Incident.assignee_id == assignee_id)
    matches = text_search(
        search, Incident.title, Incident.message, Incident.error_code, Incident.source
    )
    if matches is not None:
        conditions.append(matches)
    total = await session.scalar(select(func.count(Incident.id)).where(*conditions)) or 0
    rows = await session.execute(
        select(Incident, User.username, KnownError.name)
        .outerjoin(User, User.id == Incident.assignee_id)
        .outerjoin(KnownError, KnownError.id == Incident.known_error_id)
        .where(*conditions)
        .order_by(Incident.last_seen_at.desc(), Incident.id.desc())
        .offset(offset)
        .limit(limit)
    )
    items = [
        IncidentRow(
            id=i.id,
            title=i.title,
            source=i.source,
            stage=i.stage,
            error_code=i.error_code,
            severity=i.severity,
            category=i.category,
            status=i.status,
            assignee=assignee,
            known_error=known,
            occurrences=i.occurrences,
            retry_count=i.retry_count,
            upload_id=i.upload_id,
            created_at=i.created_at,
            last_seen_at=i.last_seen_at,
        )
        for i, assignee, known in rows
    ]
    return Page(items=items, total=total, offset=offset, limit=limit)


async def _load(session: UnitOfWork, incident_id: int) -> Incident:
    incident = await session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"there is no incident #{incident_id}.")
    return incident


async def _username(session: UnitOfWork, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    return await session.scalar(select(User.username).where(User.id == user_id))


async def _detail(session: UnitOfWork, incident: Incident) -> IncidentDetail:
    await session.flush()
    actor_user = aliased(User)
    timeline_rows = await session.execute(
        select(IncidentEvent, actor_user.username)
        .outerjoin(actor_user, actor_user.id == IncidentEvent.actor_id)
        .where(IncidentEvent.incident_id == incident.id)
        .order_by(IncidentEvent.created_at, IncidentEvent.id)
    )
    timeline = [
        TimelineEntry(at=e.created_at, kind=e.kind, actor=name or "system", detail=e.detail)
        for e, name in timeline_rows
    ]
    ticket_row = await ticket_of(session, incident.id)
    ticket = None
    if ticket_row is not None:
        ticket = TicketInfo(
            id=ticket_row.id,
            title=ticket_row.title,
            status=ticket_row.status,
            assignee=await _username(session, ticket_row.assignee_id),
            notes=ticket_row.notes,
            created_at=ticket_row.created_at,
            closed_at=ticket_row.closed_at,
        )
    known = (
        await session.get(KnownError, incident.known_error_id) if incident.known_error_id else None
    )
    upload = await session.get(Upload, incident.upload_id) if incident.upload_id else None
    return IncidentDetail(
        id=incident.id,
        title=incident.title,
        source=incident.source,
        status=incident.status,
        severity=incident.severity,
        category=incident.category,
        stage=incident.stage,
        error_code=incident.error_code,
        message=incident.message,
        hint=incident.hint,
        details=dict(incident.details or {}),
        upload_id=incident.upload_id,
        upload_filename=upload.filename if upload else None,
        upload_status=upload.status if upload else None,
        run_id=incident.run_id,
        job_id=incident.job_id,
        assignee_id=incident.assignee_id,
        assignee=await _username(session, incident.assignee_id),
        known_error_id=incident.known_error_id,
        known_error=known.name if known else None,
        known_error_fix=known.fix if known else "",
        remediation=known.remediation if known else Remediation.NONE,
        root_cause=incident.root_cause,
        corrective_action=incident.corrective_action,
        impact_summary=incident.impact_summary,
        analysis_notes=incident.analysis_notes,
        retry_count=incident.retry_count,
        auto_retry_count=incident.auto_retry_count,
        occurrences=incident.occurrences,
        created_at=incident.created_at,
        last_seen_at=incident.last_seen_at,
        acknowledged_at=incident.acknowledged_at,
        resolved_at=incident.resolved_at,
        archived_at=incident.archived_at,
        ticket=ticket,
        timeline=timeline,
    )


async def get_incident(session: UnitOfWork, *, actor: Actor, incident_id: int) -> IncidentDetail:
    require(actor, Action.VIEW_ISSUES)
    return await _detail(session, await _load(session, incident_id))


async def list_assignees(session: UnitOfWork, *, actor: Actor) -> list[UserRef]:
    """Active admins and moderators: the people an incident can be assigned to."""
    require(actor, Action.MANAGE_ISSUES)
    rows = await session.execute(
        select(User.id, User.username, User.role)
        .where(User.active.is_(True), User.role.in_((Role.ADMIN, Role.MODERATOR)))
        .order_by(User.username)
    )
    return [UserRef(id=i, username=name, role=role) for i, name, role in rows]


# ---------------------------------------------------------------------------- actions


async def assign_incident(
    session: UnitOfWork, *, actor: Actor, incident_id: int, assignee_id: int | None
) -> IncidentDetail:
    """Assign to an active admin or moderator, or unassign with None."""
    require(actor, Action.MANAGE_ISSUES)
    incident = await _load(session, incident_id)
    require_status(incident, ACTIVE_STATUSES, "assigned")
    if assignee_id is None:
        detail = "unassigned"
    else:
        user = await session.get(User, assignee_id)
        if user is None or not user.active or user.role not in (Role.ADMIN, Role.MODERATOR):
            raise ValidationFailed(
                f"user #{assignee_id} cannot take incidents; choose an active admin or moderator."
            )
        detail = f"assigned to {user.username}"
    incident.assignee_id = assignee_id
    ticket = await ticket_of(session, incident.id)
    if ticket is not None:
        ticket.assignee_id = assignee_id
    add_event(session, incident.id, TimelineKind.ASSIGNED, detail, actor=actor)
    return _changed(session, await _detail(session, incident))


async def analyze_incident(
    session: UnitOfWork,
    *,
    actor: Actor,
    incident_id: int,
    root_cause: str | None = None,
    corrective_action: str | None = None,
    impact_summary: str | None = None,
    analysis_notes: str | None = None,
) -> IncidentDetail:
    """Fill the RCA fields (None leaves a field as it is) and match known errors again.

    Acknowledges the incident: open becomes in progress and the MTTA clock stops.
    """
    require(actor, Action.MANAGE_ISSUES)
    incident = await _load(session, incident_id)
    require_status(incident, ACTIVE_STATUSES, "analyzed")
    now = utcnow()
    changed = []
    for name, value in (
        ("root_cause", root_cause),
        ("corrective_action", corrective_action),
        ("impact_summary", impact_summary),
        ("analysis_notes", analysis_notes),
    ):
        if value is not None and value.strip() != getattr(incident, name):
            setattr(incident, name, value.strip())
            changed.append(name.replace("_", " "))
    known = await match_known_error(
        session, code=incident.error_code, message=incident.message, stage=incident.stage
    )
    if known is not None and known.id != incident.known_error_id:
        incident.known_error_id = known.id
        incident.severity = known.severity
        incident.category = known.category
        if not incident.root_cause:
            incident.root_cause = known.root_cause
        add_event(
            session,
            incident.id,
            TimelineKind.KNOWN_ERROR,
            f"matches known error '{known.name}': {known.fix}",
            actor=actor,
            at=now,
        )
    acknowledge(incident, now)
    summary = "updated " + ", ".join(changed) if changed else "reviewed"
    add_event(session, incident.id, TimelineKind.ANALYZED, summary, actor=actor, at=now)
    return _changed(session, await _detail(session, incident))


def _required(value: str | None, what: str) -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationFailed(f"the {what} is required to resolve an incident; describe it.")
    return text


async def resolve_incident(
    session: UnitOfWork,
    *,
    actor: Actor,
    incident_id: int,
    root_cause: str,
    corrective_action: str,
) -> IncidentDetail:
    require(actor, Action.MANAGE_ISSUES)
    cause = _required(root_cause, "root cause")
    action = _required(corrective_action, "corrective action")
    incident = await _load(session, incident_id)
    now = utcnow()
    resolve(incident, root_cause=cause, corrective_action=action, now=now)
    add_event(session, incident.id, TimelineKind.RESOLVED, action, actor=actor, at=now)
    await close_ticket(session, incident.id, now, f"Resolved by {actor.username}: {action}")
    return _changed(session, await _detail(session, incident))


async def archive_incident(
    session: UnitOfWork, *, actor: Actor, incident_id: int
) -> IncidentDetail:
    require(actor, Action.MANAGE_ISSUES)
    incident = await _load(session, incident_id)
    now = utcnow()
    move(incident, IncidentStatus.ARCHIVED, "archived")
    incident.archived_at = now
    add_event(session, incident.id, TimelineKind.ARCHIVED, "", actor=actor, at=now)
    return _changed(session, await _detail(session, incident))


async def reopen_incident(
    session: UnitOfWork, *, actor: Actor, incident_id: int, reason: str = ""
) -> IncidentDetail:
    """Resolved → open again; the resolution time is cleared, the first acknowledgement kept."""
    require(actor, Action.MANAGE_ISSUES)
    incident = await _load(session, incident_id)
    require_status(incident, (IncidentStatus.RESOLVED,), "reopened")
    move(incident, IncidentStatus.OPEN, "reopened")
    incident.resolved_at = None
    await reopen_ticket(session, incident.id)
    add_event(session, incident.id, TimelineKind.REOPENED, reason.strip(), actor=actor)
    return _changed(session, await _detail(session, incident))


async def retry_incident(
    db: Database, dispatcher: Dispatcher, *, actor: Actor, incident_id: int
) -> IncidentDetail:
    """Re-queue the incident's upload from its failed stage (counted), then enqueue it.

    The upload moves back to `queued` by a conditional update in the same transaction as the
    count and the timeline line; `retry_upload(upload_id, stage)` is enqueued after the commit,
    and `incident.updated` / `upload.updated` leave with the commit. If enqueueing fails the upload
    stays queued, where `batchops-daemon --once` and the sweeper find it.
    """
    require(actor, Action.MANAGE_ISSUES)
    async with db.unit() as session:
        incident = await _load(session, incident_id)
        require_status(incident, ACTIVE_STATUSES, "retried")
        if incident.upload_id is None:
            raise ValidationFailed(
                f"incident #{incident.id} is not about an upload; run its schedule again instead."
            )
        upload = await session.get(Upload, incident.upload_id)
        if upload is None:
            raise NotFound(f"the upload of incident #{incident.id} no longer exists.")
        stage = incident.stage or upload.current_stage or Stage.STANDARDIZE
        moved = await session.execute(
            update(Upload)
            .where(Upload.id == upload.id, Upload.status.in_(RETRYABLE_UPLOAD_STATUSES))
            .values(status=UploadStatus.QUEUED, error_code=None, error_message=None)
            .execution_options(synchronize_session=False)
        )
        if not moved.rowcount:  # type: ignore[attr-defined]
            raise InvalidTransition(
                f"upload #{upload.id} is {upload.status.value}, not failed; wait for it to finish "
                "before retrying."
            )
        now = utcnow()
        incident.retry_count += 1
        acknowledge(incident, now)
        add_event(
            session,
            incident.id,
            TimelineKind.RETRIED,
            f"retry #{incident.retry_count} of upload #{upload.id} from the {stage.value} stage",
            actor=actor,
            at=now,
        )
        upload_id = upload.id
        session.expire(upload)  # moved by the conditional UPDATE above
        session.after_commit(lambda: dispatcher.retry_upload(upload_id, stage))
        session.emit(
            events.Event(type="upload.updated", id=upload_id, status=UploadStatus.QUEUED.value)
        )
        detail = _changed(session, await _detail(session, incident))
    return detail
