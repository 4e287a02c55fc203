"""Incidents: a failed stage becomes one incident (with its ticket and timeline).

This first version records the failure; de-duplication by fingerprint, known-error matching,
auto-remediation and the lifecycle actions grow here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core.enums import Stage
from batchops_core.models import Incident, IncidentEvent, Ticket


@dataclass(frozen=True)
class FailureInfo:
    """What a failing stage or task knows about its failure."""

    code: str
    message: str
    stage: Stage | None = None
    hint: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def fingerprint(source: str, failure: FailureInfo) -> str:
    key = f"{source}|{failure.stage or ''}|{failure.code}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


async def record_stage_failure(
    session: AsyncSession,
    *,
    source: str,
    failure: FailureInfo,
    upload_id: int | None = None,
    run_id: int | None = None,
    job_id: int | None = None,
) -> int:
    """Create the incident, its ticket and the first timeline entry; return the incident id."""
    title = f"{source}: {failure.code} at {failure.stage or 'task'}"
    incident = Incident(
        title=title[:255],
        source=source,
        upload_id=upload_id,
        run_id=run_id,
        job_id=job_id,
        stage=failure.stage,
        error_code=failure.code,
        message=failure.message,
        hint=failure.hint,
        details=failure.details,
        fingerprint=fingerprint(source, failure),
    )
    session.add(incident)
    await session.flush()
    session.add(Ticket(incident_id=incident.id, title=f"Follow up: {title}"[:255]))
    session.add(IncidentEvent(incident_id=incident.id, kind="opened", detail=failure.message))
    return incident.id
