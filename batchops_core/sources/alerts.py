"""Source health: one incident per source, opened when it fails N times in a row or misses M
expected days, updated (not duplicated) while the trouble lasts, resolved when data arrives.

The incident id is kept on the source, so however long a source stays broken, the incident queue
shows one line with an occurrence count, not one per failed sync. Opening it mails the source's
department contact (after COMMIT, so no mail announces an incident that was rolled back); a mail
failure is logged and never fails the sync.
"""

from __future__ import annotations

import logging
from datetime import datetime

from batchops_core import incidents
from batchops_core.enums import IncidentStatus
from batchops_core.incidents import FailureInfo, TimelineKind
from batchops_core.infra import events
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import UnitOfWork
from batchops_core.models import Department, Incident
from batchops_core.sources.models import Source

log = logging.getLogger(__name__)
SOURCE_FAILING = "SOURCE_FAILING"
SOURCE_MISSING = "SOURCE_MISSING"


def thresholds(source: Source) -> tuple[int, int]:
    config = source.config or {}
    return int(config.get("alert_after_failures", 3)), int(config.get("alert_after_missing", 3))


async def _active_incident(uow: UnitOfWork, source: Source) -> Incident | None:
    if source.incident_id is None:
        return None
    incident = await uow.get(Incident, source.incident_id)
    if incident is None or incident.status not in incidents.ACTIVE_STATUSES:
        return None
    return incident


async def raise_alert(
    uow: UnitOfWork, source: Source, code: str, message: str, settings: Settings | None
) -> int:
    """Open the source's incident, or add an occurrence to the one still open."""
    now = utcnow()
    incident = await _active_incident(uow, source)
    if incident is not None:
        incident.occurrences += 1
        incident.last_seen_at = now
        incident.message = message
        incidents.add_event(
            uow, incident.id, TimelineKind.OCCURRENCE, f"#{incident.occurrences}: {message}", at=now
        )
        uow.emit(events.Event(type="incident.updated", id=incident.id, status=incident.status))
        return incident.id
    recorded = await incidents.record_failure(
        uow,
        source=f"source:{source.name}",
        failure=FailureInfo(
            code=code,
            message=message,
            hint="Check the source (`batchops source test`) and its system; the incident "
            "resolves itself when data arrives.",
        ),
        settings=settings,
        default_category="source",
        now=now,
    )
    source.incident_id = recorded.incident_id
    uow.emit(events.Event(type="incident.updated", id=recorded.incident_id, status="open"))
    if settings is not None and settings.smtp.host and source.department_id is not None:
        department = await uow.get(Department, source.department_id)
        if department is not None and department.contact_email:
            _mail_later(uow, settings, department.contact_email, source.name, message)
    return recorded.incident_id


def _mail_later(uow: UnitOfWork, settings: Settings, to: str, name: str, message: str) -> None:
    async def send() -> None:
        from batchops_core.infra.mail import MailError, send_mail

        try:
            await send_mail(
                settings,
                to=[to],
                subject=f"Source {name} needs attention",
                text=f"Hello,\n\nBatchOps cannot get data from the source {name}:\n\n"
                f"{message}\n\nThe incident closes itself when data arrives again.\n",
            )
        except MailError as exc:
            log.warning("could not mail %s about source %s: %s", to, name, exc)

    uow.after_commit(send)


async def resolve_alert(uow: UnitOfWork, source: Source, why: str) -> int | None:
    incident = await _active_incident(uow, source)
    source.incident_id = None
    if incident is None:
        return None
    now = utcnow()
    if incident.status is IncidentStatus.OPEN or incident.status is IncidentStatus.IN_PROGRESS:
        incidents.resolve(
            incident, root_cause=incident.root_cause or why, corrective_action=why, now=now
        )
        incidents.add_event(uow, incident.id, TimelineKind.AUTO_RESOLVED, why, at=now)
        await incidents.close_ticket(uow, incident.id, now, why)
        uow.emit(events.Event(type="incident.updated", id=incident.id, status="resolved"))
    return incident.id


async def note_success(
    uow: UnitOfWork, source: Source, *, when: datetime | None = None, detail: str = ""
) -> None:
    """Data arrived: reset the failure count and resolve the source's incident."""
    now = when or utcnow()
    source.consecutive_failures = 0
    source.last_error = None
    source.last_sync_at = now
    source.last_success_at = now
    if source.department_id is not None:
        # a real arrival: the department has submitted (the reminders read this)
        department = await uow.get(Department, source.department_id)
        if department is not None:
            department.last_submitted_at = now
    await resolve_alert(uow, source, f"data arrived again{': ' + detail if detail else ''}")


async def note_failure(
    uow: UnitOfWork, source: Source, message: str, settings: Settings | None
) -> int | None:
    """One failed sync: count it; at the threshold, open or update the incident."""
    source.consecutive_failures += 1
    source.last_error = message
    source.last_sync_at = utcnow()
    failures, _ = thresholds(source)
    if source.consecutive_failures >= failures:
        text = f"{source.consecutive_failures} failed syncs in a row; last: {message}"
        return await raise_alert(uow, source, SOURCE_FAILING, text, settings)
    return None


async def note_missing(
    uow: UnitOfWork, source: Source, missing_days: int, settings: Settings | None
) -> int | None:
    _, limit = thresholds(source)
    if missing_days >= limit:
        text = f"{missing_days} expected days have no data"
        return await raise_alert(uow, source, SOURCE_MISSING, text, settings)
    return None
