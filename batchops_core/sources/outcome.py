"""What a sync reports, and how a source's success or failure is recorded on it.

Shared by the database path (`sync.py`) and the file paths (`files.py`), which is why it lives
apart from both: each imports it, neither imports the other at module level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import update

from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.sources import alerts
from batchops_core.sources.jobstate import ensure_job
from batchops_core.sources.models import JobStatus, Source, SourceJob, SourceKind
from batchops_core.sources.service import JobInfo, source_event


@dataclass(frozen=True)
class SyncReport:
    source: str
    kind: SourceKind
    rows: int = 0
    jobs: list[JobInfo] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and all(j.status is not JobStatus.FAILED for j in self.jobs)

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind.value,
            "rows": self.rows,
            "ok": self.ok,
            "error": self.error,
            "skipped": self.skipped,
            "jobs": [j.as_json() for j in self.jobs],
            **self.detail,
        }


async def record_failure(
    db: Database, settings: Settings, source_id: int, message: str, day: date | None = None
) -> None:
    """The source failed as a whole: one sentence on it and on the day's job, count it."""
    async with db.unit() as uow:
        source = await uow.get(Source, source_id)
        if source is None:
            return
        if day is not None:
            job_id = await ensure_job(uow, source_id, "", day)
            await uow.execute(
                update(SourceJob)
                .where(SourceJob.id == job_id, SourceJob.status != JobStatus.SUCCEEDED)
                .values(
                    status=JobStatus.FAILED,
                    error=message,
                    attempts=SourceJob.attempts + 1,
                    finished_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
        await alerts.note_failure(uow, source, message, settings)
        uow.emit(source_event(source_id, "failed"))


async def record_success(db: Database, source_id: int, detail: str) -> None:
    async with db.unit() as uow:
        source = await uow.get(Source, source_id)
        if source is not None:
            await alerts.note_success(uow, source, detail=detail)
            uow.emit(source_event(source_id, "synced"))
