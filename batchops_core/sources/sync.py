"""`sync`: run a source's jobs now — database rows since the last id, http days, folder files.

A failure of the external system becomes one sentence on the source (and on the day's job),
counts toward the source's alert, and leaves nothing half-written: database batches commit with
their high-water mark, fetched files become uploads only once fully stored, and a day's records
are replaced only when its new files have published.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from batchops_core import audit
from batchops_core.errors import BatchOpsError, ValidationFailed
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.permissions import Action, Actor, require
from batchops_core.sources.cadence import today
from batchops_core.sources.models import SourceJob, SourceKind
from batchops_core.sources.outcome import SyncReport, record_failure, record_success
from batchops_core.sources.service import get_jobs, load_source


async def _start(db: Database, actor: Actor, name: str, force: bool) -> tuple[int, str, SourceKind]:
    async with db.unit() as uow:
        source = await load_source(uow, name)
        if not source.enabled:
            raise ValidationFailed(f"source {source.name} is disabled; enable it first.")
        audit.record(
            uow,
            actor=actor,
            action="source.sync",
            target_type="source",
            target_id=source.id,
            target_name=source.name,
            detail="forced" if force else "",
        )
        return source.id, source.name, SourceKind(source.kind)


async def _sync_database(db: Database, settings: Settings, source_id: int, name: str) -> SyncReport:
    from batchops_core.sources.database import sync_database

    try:
        result = await sync_database(db, source_id)
    except BatchOpsError as exc:
        await record_failure(db, settings, source_id, str(exc), today(settings.timezone))
        return SyncReport(name, SourceKind.DATABASE, error=str(exc))
    await record_success(db, source_id, f"{result.rows} rows up to id {result.last_synced_id}")
    async with db.unit() as uow:
        ids = list(
            await uow.scalars(
                select(SourceJob.id).where(
                    SourceJob.source_id == source_id,
                    SourceJob.day.in_([date.fromisoformat(d) for d in result.days]),
                )
            )
        )
        jobs = await get_jobs(uow, actor=_system(), job_ids=ids)
    return SyncReport(
        name,
        SourceKind.DATABASE,
        rows=result.rows,
        jobs=jobs,
        detail={"batches": result.batches, "last_synced_id": result.last_synced_id},
    )


def _system() -> Actor:
    from batchops_core.permissions import SYSTEM

    return SYSTEM


async def sync_source(
    db: Database,
    settings: Settings,
    *,
    actor: Actor,
    name: str,
    days: list[date] | None = None,
    force: bool = False,
    wait: bool = True,
    dispatcher: Any = None,
) -> SyncReport:
    """Sync one source now. Database sources read incrementally (dates do not apply); http
    sources fetch each (partition, day) — today when no day is given; folder sources take every
    new settled file. `wait` waits for fetched files to pass the pipeline and stores records."""
    require(actor, Action.RUN_SOURCES)
    source_id, source_name, kind = await _start(db, actor, name, force)
    if kind is SourceKind.DATABASE:
        return await _sync_database(db, settings, source_id, source_name)
    from batchops_core.sources.files import sync_files

    return await sync_files(
        db,
        settings,
        source_id=source_id,
        name=source_name,
        kind=kind,
        days=days,
        force=force,
        wait=wait,
        dispatcher=dispatcher,
    )
