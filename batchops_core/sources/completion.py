"""Completing file jobs: when a job's uploads have all finished, store their records and mark
the job succeeded in one transaction, or fail it with the pipeline's sentence.

`on_upload_finished(db, settings, upload_id)` is the hook the worker calls after a source's
upload reaches a final status; `wait_and_complete` is what a waiting sync does; the
`settle_source_jobs` body sweeps up whatever neither saw.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import select

from batchops_core.enums import UploadStatus
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Upload
from batchops_core.sources.jobstate import finish
from batchops_core.sources.models import JobStatus, Source, SourceJob, SourceUpload
from batchops_core.sources.records import store_published_records
from batchops_core.sources.service import source_event

WAIT_SECONDS = 600.0


def where(day: object, partition: str) -> str:
    """`2026-12-01 pos=1`, or just the day for a source without partitions."""
    return f"{day} {partition}" if partition else str(day)


async def complete_job(db: Database, settings: Settings, job_id: int) -> JobStatus:
    """Store the records of a processing job whose uploads are all final; fail it if one failed."""
    async with db.unit() as uow:
        job = await uow.get(SourceJob, job_id, with_for_update=True)
        if job is None or job.status is not JobStatus.PROCESSING:
            return JobStatus(job.status) if job else JobStatus.FAILED
        links = list(await uow.scalars(select(SourceUpload).where(SourceUpload.job_id == job_id)))
        uploads = {
            u.id: u
            for u in await uow.scalars(
                select(Upload).where(Upload.id.in_([lk.upload_id for lk in links]))
            )
        }
        if any(not u.status.is_final for u in uploads.values()):
            return JobStatus.PROCESSING
        failed = [
            u for u in uploads.values() if u.status in (UploadStatus.FAILED, UploadStatus.CANCELLED)
        ]
        if failed:
            first = failed[0]
            message = (
                f"{where(job.day, job.partition)}: file {first.filename} failed in the pipeline: "
                f"{first.error_message or first.error_code}"
            )
            await finish(uow, job_id, JobStatus.FAILED, error=message)
            source = await uow.get(Source, job.source_id)
            if source is not None:
                from batchops_core.sources import alerts

                await alerts.note_failure(uow, source, message, settings)
            uow.emit(source_event(job.source_id, "failed"))
            return JobStatus.FAILED
        rows = 0
        for link in links:
            rows += await store_published_records(uow, upload_id=link.upload_id, settings=settings)
        await finish(uow, job_id, JobStatus.SUCCEEDED, rows=rows)
        source = await uow.get(Source, job.source_id)
        if source is not None:
            from batchops_core.sources import alerts

            await alerts.note_success(uow, source, detail=f"{job.day} {job.partition}".strip())
        uow.emit(source_event(job.source_id, "succeeded"))
    return JobStatus.SUCCEEDED


async def on_upload_finished(db: Database, settings: Settings, upload_id: int) -> JobStatus | None:
    """The hook for the worker: call after a source's upload reaches a final status."""
    async with db.unit() as uow:
        job_id = await uow.scalar(
            select(SourceUpload.job_id).where(SourceUpload.upload_id == upload_id)
        )
    return None if job_id is None else await complete_job(db, settings, int(job_id))


async def wait_and_complete(
    db: Database,
    settings: Settings,
    dispatcher: Any,
    job_ids: list[int],
    timeout: float = WAIT_SECONDS,
) -> None:
    """Wait for the jobs' uploads (the embedded worker runs them here), then complete the jobs."""
    if dispatcher is not None and getattr(dispatcher, "embedded", False):
        await dispatcher.wait_idle()
    deadline = time.monotonic() + timeout
    pending = list(job_ids)
    while pending:
        pending = [
            j for j in pending if await complete_job(db, settings, j) is JobStatus.PROCESSING
        ]
        if not pending or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.2)
