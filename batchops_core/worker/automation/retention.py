"""The retention purge: old rows go, and so do the stored objects only they named.

Rows are deleted in one transaction and their objects only after it commits: a failed purge
keeps every row with its files, and a crash after the commit leaves orphan objects — which the
same task removes on its next run (objects under `uploads/` and `exports/` that no row names and
that are older than a day, so that an intake or a publish still in flight is never touched).
Every host shares the store, so one purge cleans for all of them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select

from batchops_core.enums import IncidentStatus, RunStatus, UploadStatus
from batchops_core.infra.clock import utcnow
from batchops_core.infra.db import UnitOfWork
from batchops_core.models import STORAGE_KEY_COLUMNS, Incident, JobRun, Upload
from batchops_core.storage import ObjectStore, StorageError, export_prefix, open_store
from batchops_core.storage.keys import EXPORTS, UPLOADS
from batchops_core.worker.automation.frame import AutomationRun, Outcome
from batchops_core.worker.automation.registry import ArgSpec, automation

ORPHAN_GRACE = timedelta(days=1)
"""How old an object nobody names must be before the sweep removes it."""


async def referenced_keys(session: UnitOfWork) -> set[str]:
    """Every key a row names."""
    keys: set[str] = set()
    for column in STORAGE_KEY_COLUMNS:
        keys.update(k for k in (await session.scalars(select(column))).all() if k)
    return keys


async def _delete_objects(store: ObjectStore, uploads: list[tuple[int, list[str]]]) -> int:
    removed = 0
    for upload_id, keys in uploads:
        for key in keys:
            removed += await store.delete(key)
        removed += await store.delete_prefix(export_prefix(upload_id))
    return removed


async def sweep_orphans(run: AutomationRun, store: ObjectStore, now: datetime) -> int:
    """Delete objects under uploads/ and exports/ that no row names, older than the grace."""
    async with run.ctx.db.unit() as session:
        named = await referenced_keys(session)
    removed = 0
    for prefix in (f"{UPLOADS}/", f"{EXPORTS}/"):
        async for info in store.list(prefix):
            if info.key not in named and info.modified < now - ORPHAN_GRACE:
                removed += await store.delete(info.key)
    return removed + await store.sweep_staging(now - ORPHAN_GRACE)


@automation(
    "Delete rows and files older than the retention.",
    ArgSpec("days", int, False, "retention in days", minimum=1),
)
async def purge_old_records(run: AutomationRun, days: int | None = None) -> Outcome:
    """Delete finished uploads (and their stored objects), runs and archived incidents past
    retention, then sweep orphan objects."""
    settings = run.ctx.settings
    keep_days = days if days is not None else settings.retention.days
    now = utcnow()
    cutoff = now - timedelta(days=keep_days)
    async with run.ctx.db.unit() as session:
        uploads = (
            await session.scalars(
                select(Upload).where(
                    Upload.created_at < cutoff, Upload.status.in_(UploadStatus.finals())
                )
            )
        ).all()
        doomed = [(u.id, u.storage_keys()) for u in uploads]
        if doomed:
            await session.execute(delete(Upload).where(Upload.id.in_([i for i, _ in doomed])))
        runs = await session.execute(
            delete(JobRun).where(JobRun.created_at < cutoff, JobRun.status != RunStatus.RUNNING)
        )
        incidents = await session.execute(
            delete(Incident).where(
                Incident.status == IncidentStatus.ARCHIVED,
                Incident.archived_at.is_not(None),
                Incident.archived_at < cutoff,
            )
        )
    store = open_store(settings)
    try:
        files = await _delete_objects(store, doomed)
        orphans = await sweep_orphans(run, store, now)
    except StorageError as exc:
        run.info(f"rows purged; stored objects stay until the next purge: {exc}")
        files = orphans = 0
    figures = {
        "uploads": len(doomed),
        "files": files,
        "orphans": orphans,
        "runs": int(runs.rowcount or 0),  # type: ignore[attr-defined]
        "incidents": int(incidents.rowcount or 0),  # type: ignore[attr-defined]
        "cutoff": cutoff.isoformat(),
    }
    if not any(figures[k] for k in ("uploads", "files", "orphans", "runs", "incidents")):
        return Outcome(RunStatus.SKIPPED, f"nothing older than {keep_days} days", figures)
    run.info(
        f"purged {figures['uploads']} uploads ({figures['files']} files), {figures['runs']} runs, "
        f"{figures['incidents']} archived incidents older than {keep_days} days; "
        f"{orphans} orphan objects removed"
    )
    return Outcome(RunStatus.SUCCEEDED, f"purged records older than {keep_days} days", figures)
