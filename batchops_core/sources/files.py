"""File jobs (http and folder sources): fetch → uploads through the pipeline → records.

One job per (source, partition, day). A job is claimed (`jobstate.claim`), its files fetched
into storage, and each chosen file recorded as an upload of the source's department *in the
same unit of work* that links it to the job and moves the job to `processing` — so there is no
upload without its job, nor a job pointing at a file that was never stored. When the uploads
have published, `complete_job` stores their rows as records and marks the job succeeded in one
transaction; a failed upload fails the job with the pipeline's sentence.

A forced day unlinks the job's earlier uploads when the new ones are linked; their records stay
until the new records are stored, then are replaced (never added to).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from batchops_core.enums import ProcessMode
from batchops_core.errors import BatchOpsError
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Department
from batchops_core.permissions import SYSTEM
from batchops_core.sources import http
from batchops_core.sources.cadence import today as local_today
from batchops_core.sources.completion import wait_and_complete, where
from batchops_core.sources.jobstate import claim, ensure_job, finish
from batchops_core.sources.models import (
    JobStatus,
    Source,
    SourceFile,
    SourceJob,
    SourceKind,
    SourceUpload,
)
from batchops_core.sources.outcome import SyncReport, record_failure
from batchops_core.sources.service import get_jobs, source_event
from batchops_core.sources.testing import parser_options


@dataclass(frozen=True)
class Prepared:
    """A file ready to become an upload of a job."""

    path: Path
    name: str
    file_type: str
    sha256: str


def plan_config(source_name: str, config: dict[str, Any]) -> dict[str, Any]:
    """The pipeline plan of a source's files: keep the rows (custom, dataset unchanged)."""
    plan: dict[str, Any] = {"instruction": f"source {source_name}: keep the rows as records"}
    options = parser_options(config)
    if options:
        plan["read_options"] = options
    return plan


def today(settings: Settings) -> date:
    return local_today(settings.timezone)


async def _link_uploads(
    db: Database,
    settings: Settings,
    dispatcher: Any,
    *,
    job_id: int,
    source: Source,
    department: str,
    files: list[Prepared],
    force: bool,
    job_values: dict[str, Any],
    seen: bool = False,
) -> None:
    """Record every prepared file as an upload linked to the job, in one unit of work."""
    from batchops_core.services.uploads import (
        check_plan,
        discard_staged,
        record_upload,
        stage_file,
    )

    plan = check_plan(ProcessMode.CUSTOM, plan_config(source.name, source.config))
    staged = [await stage_file(settings, f.path, f.name) for f in files]
    try:
        async with db.unit() as uow:
            if force:
                await uow.execute(delete(SourceUpload).where(SourceUpload.job_id == job_id))
            for prepared, stage in zip(files, staged, strict=True):
                info = await record_upload(
                    uow,
                    actor=SYSTEM,
                    staged=stage,
                    source=department,
                    plan=plan,
                    dispatcher=dispatcher,
                    force=force,
                )
                uow.add(
                    SourceUpload(upload_id=info.id, job_id=job_id, file_type=prepared.file_type)
                )
                if seen:
                    uow.add(
                        SourceFile(
                            source_id=source.id,
                            path=str(prepared.path),
                            sha256=prepared.sha256,
                            size_bytes=info.size_bytes,
                            upload_id=info.id,
                        )
                    )
            await finish(uow, job_id, JobStatus.PROCESSING, **job_values)
            uow.emit(source_event(source.id, "processing"))
    except BaseException:
        for stage in staged:
            await discard_staged(settings, stage)
        raise


async def _source(db: Database, source_id: int) -> tuple[Source, str]:
    async with db.unit() as uow:
        source = await uow.get(Source, source_id)
        assert source is not None
        department = await uow.scalar(
            select(Department.name).where(Department.id == source.department_id)
        )
    if not department:
        raise BatchOpsError(f"source {source.name} has no department to submit its files as.")
    return source, department


async def _claim(
    db: Database, source_id: int, partition: str, day: date, force: bool
) -> tuple[int, bool, str]:
    async with db.unit() as uow:
        job_id = await ensure_job(uow, source_id, partition, day)
        claimed = await claim(uow, job_id, force=force, now=utcnow())
        status = await uow.scalar(select(SourceJob.status).where(SourceJob.id == job_id))
    return job_id, claimed, str(status)


async def _fail(db: Database, settings: Settings, job_id: int, message: str) -> None:
    """The job failed before the pipeline: one sentence on it, counted on the source."""
    from batchops_core.sources import alerts

    async with db.unit() as uow:
        await finish(uow, job_id, JobStatus.FAILED, error=message)
        source_id = await uow.scalar(select(SourceJob.source_id).where(SourceJob.id == job_id))
        source = await uow.get(Source, source_id)
        if source is not None:
            await alerts.note_failure(uow, source, message, settings)
            uow.emit(source_event(source.id, "failed"))


async def run_http_job(
    db: Database,
    settings: Settings,
    dispatcher: Any,
    *,
    source: Source,
    department: str,
    day: date,
    values: dict[str, str],
    force: bool,
    limiter: http.Limiter,
) -> tuple[int | None, str | None]:
    """One (partition, day): (job id, None) when queued for the pipeline, or the skip reason."""
    label = http.partition_label(values)
    job_id, claimed, status = await _claim(db, source.id, label, day, force)
    if not claimed:
        return None, f"{day} {label or '-'}: already {status} (use --force to fetch it again)"
    folder = settings.scratch_path / "sources" / str(source.id) / day.isoformat() / (label or "all")
    try:
        files, fetched = await http.fetch_day(
            source.config, settings, folder=folder, day=day, values=values, limiter=limiter
        )
        prepared = [Prepared(f.path, f.file.name, f.file.type, f.sha256) for f in fetched]
        await _link_uploads(
            db,
            settings,
            dispatcher,
            job_id=job_id,
            source=source,
            department=department,
            files=prepared,
            force=force,
            job_values={
                "files": [f.as_json() for f in files],
                "chosen": [
                    {"name": f.file.name, "type": f.file.type, "rows": f.rows, "reason": f.reason}
                    for f in fetched
                ],
                "checksums": {f.file.name: f.sha256 for f in fetched},
            },
        )
    except BatchOpsError as exc:
        await _fail(db, settings, job_id, f"{where(day, label)}: {exc}")
    return job_id, None


async def run_folder_pass(
    db: Database,
    settings: Settings,
    dispatcher: Any,
    *,
    source: Source,
    department: str,
    days: list[date] | None,
    force: bool,
) -> tuple[list[int], list[str]]:
    """Take every new settled file; one job per file day. Returns (job ids, skipped lines)."""
    from batchops_core.sources.folder import scan

    found, waiting = await scan(source.config, settings.timezone)
    skipped = [f"{name}: still being written; left for the next pass" for name in waiting]
    if days is not None:
        found = [f for f in found if f.day in set(days)]
    async with db.unit() as uow:
        known = set(
            await uow.scalars(select(SourceFile.sha256).where(SourceFile.source_id == source.id))
        )
    by_day: dict[date, list[Any]] = {}
    for f in found:
        if f.sha256 in known and not force:
            continue
        by_day.setdefault(f.day, []).append(f)
    job_ids = []
    for day, files in sorted(by_day.items()):
        job_id, _, _ = await _claim(db, source.id, "", day, True)
        if force:
            async with db.unit() as uow:
                await uow.execute(
                    delete(SourceFile).where(
                        SourceFile.source_id == source.id,
                        SourceFile.sha256.in_([f.sha256 for f in files]),
                    )
                )
        prepared = [
            Prepared(f.path, f.path.name, f.path.suffix.lstrip(".").lower(), f.sha256)
            for f in files
        ]
        try:
            await _link_uploads(
                db,
                settings,
                dispatcher,
                job_id=job_id,
                source=source,
                department=department,
                files=prepared,
                force=force,
                seen=True,
                job_values={
                    "files": [{"name": f.path.name, "size": f.size} for f in files],
                    "chosen": [
                        {"name": f.path.name, "reason": "new file in the folder"} for f in files
                    ],
                    "checksums": {f.path.name: f.sha256 for f in files},
                },
            )
        except BatchOpsError as exc:
            await _fail(db, settings, job_id, f"{day}: {exc}")
        job_ids.append(job_id)
    return job_ids, skipped


# ----------------------------------------------------------------------------------- sync


async def sync_files(
    db: Database,
    settings: Settings,
    *,
    source_id: int,
    name: str,
    kind: SourceKind,
    days: list[date] | None,
    force: bool,
    wait: bool,
    dispatcher: Any,
) -> SyncReport:
    try:
        source, department = await _source(db, source_id)
    except BatchOpsError as exc:
        await record_failure(db, settings, source_id, str(exc))
        return SyncReport(name, kind, error=str(exc))
    skipped: list[str] = []
    job_ids: list[int] = []
    try:
        if kind is SourceKind.HTTP:
            limiter = http.limiter_for(source.config)
            wanted = days or [today(settings)]
            results = await asyncio.gather(
                *(
                    run_http_job(
                        db,
                        settings,
                        dispatcher,
                        source=source,
                        department=department,
                        day=day,
                        values=values,
                        force=force,
                        limiter=limiter,
                    )
                    for day in wanted
                    for values in http.partitions(source.config)
                )
            )
            job_ids = [j for j, _ in results if j is not None]
            skipped = [s for _, s in results if s]
        else:
            job_ids, skipped = await run_folder_pass(
                db,
                settings,
                dispatcher,
                source=source,
                department=department,
                days=days,
                force=force,
            )
    except BatchOpsError as exc:
        await record_failure(db, settings, source_id, str(exc), today(settings))
        return SyncReport(name, kind, error=str(exc))
    if wait and job_ids:
        await wait_and_complete(db, settings, dispatcher, job_ids)
    async with db.unit() as uow:
        jobs = await get_jobs(uow, actor=SYSTEM, job_ids=job_ids)
        rows = sum(j.rows for j in jobs if j.status is JobStatus.SUCCEEDED)
    return SyncReport(name, kind, rows=rows, jobs=jobs, skipped=skipped)
