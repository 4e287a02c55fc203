"""`batchops-daemon --once`: every queued upload and every due schedule, run here, then exit.

Work runs in this process through the embedded dispatcher (the same task bodies as the daemon),
with or without Redis. A sweep first returns uploads left `processing` by a crashed worker to the
queue. Follow-up uploads that a schedule creates (an ingest, a fetch) are processed in the same
invocation. One line per item; exit 0 when every item succeeded, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from batchops_core.enums import RunStatus, UploadStatus
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Job, Upload
from batchops_core.worker import scheduler
from batchops_core.worker.dispatcher import Dispatcher
from batchops_core.worker.heartbeat import worker_name
from batchops_core.worker.sweeper import sweep_once

OK_UPLOADS = {UploadStatus.PUBLISHED, UploadStatus.PARTIAL, UploadStatus.DUPLICATE}
OK_RUNS = {RunStatus.SUCCEEDED.value, RunStatus.SKIPPED.value, "duplicate"}
MAX_PASSES = 5


@dataclass(frozen=True)
class ItemResult:
    kind: str
    id: int
    name: str
    status: str
    ok: bool
    detail: str = ""

    def line(self) -> str:
        tail = f" ({self.detail})" if self.detail else ""
        mark = "ok  " if self.ok else "FAIL"
        return f"{mark} {self.kind} {self.id} {self.name}: {self.status}{tail}"


async def _queued_uploads(db: Database, seen: set[int]) -> list[tuple[int, str]]:
    async with db.unit() as session:
        rows = (
            await session.execute(
                select(Upload.id, Upload.filename)
                .where(Upload.status == UploadStatus.QUEUED)
                .order_by(Upload.id)
            )
        ).all()
    return [(i, f) for i, f in rows if i not in seen]


async def _final_upload(db: Database, settings: Settings, upload_id: int) -> Upload | None:
    """The upload once it left queued/processing (another worker may hold it), or as it is."""
    deadline = time.monotonic() + settings.worker.job_timeout + 30
    while True:
        async with db.unit() as session:
            upload = await session.get(Upload, upload_id)
        if upload is None or upload.status not in (UploadStatus.QUEUED, UploadStatus.PROCESSING):
            return upload
        if time.monotonic() > deadline:
            return upload
        await asyncio.sleep(0.2)


async def _one_upload(
    db: Database, settings: Settings, dispatcher: Dispatcher, upload_id: int, name: str
) -> ItemResult:
    await dispatcher.process_upload_now(upload_id)
    upload = await _final_upload(db, settings, upload_id)
    if upload is None:
        return ItemResult("upload", upload_id, name, "vanished", False)
    detail = ""
    if upload.status is UploadStatus.FAILED:
        detail = f"{upload.error_code or ''} {upload.error_message or ''}".strip()[:160]
    elif upload.rows_out is not None:
        detail = f"{upload.rows_out} rows"
    return ItemResult(
        "upload", upload_id, name, upload.status.value, upload.status in OK_UPLOADS, detail
    )


async def _one_schedule(
    dispatcher: Dispatcher, job_id: int, name: str, fired_for: str
) -> ItemResult:
    result = await dispatcher.run_schedule_now(job_id, fired_for) or {}
    status = str(result.get("status", "failed"))
    detail = str(result.get("message") or result.get("reason") or "")[:160]
    return ItemResult("schedule", job_id, name, status, status in OK_RUNS, detail)


async def _due_schedules(db: Database, settings: Settings) -> list[tuple[int, str, str]]:
    """Claim every due firing (as a daemon would) and return (job id, name, firing time)."""
    now = utcnow()
    claimed = []
    async with db.unit() as session:
        due = await scheduler.due_jobs(session, now)
    for firing in due:
        async with db.unit() as session:
            if not await scheduler.advance_job(
                session, job_id=firing.job_id, fired_for=firing.scheduled_for, now=now
            ):
                continue
            name = await session.scalar(select(Job.name).where(Job.id == firing.job_id))
        claimed.append((firing.job_id, name or "?", firing.scheduled_for.isoformat()))
    return claimed


async def run_once(db: Database, settings: Settings, emit: Callable[[str], None]) -> int:
    """Do all pending work once; call `emit` with one line per item; return the exit status."""
    dispatcher = Dispatcher(db, settings, worker=worker_name("once"))
    limit = asyncio.Semaphore(max(1, settings.worker.max_jobs))
    results: list[ItemResult] = []

    async def bounded(work):  # type: ignore[no-untyped-def]
        async with limit:
            item = await work
        emit(item.line())
        results.append(item)

    try:
        await sweep_once(db, settings, None)
        due = await _due_schedules(db, settings)
        await asyncio.gather(*(bounded(_one_schedule(dispatcher, *d)) for d in due))
        seen: set[int] = set()
        for _ in range(MAX_PASSES):
            await dispatcher.wait_idle()
            pending = await _queued_uploads(db, seen)
            if not pending:
                break
            seen.update(i for i, _ in pending)
            await asyncio.gather(
                *(bounded(_one_upload(db, settings, dispatcher, i, f)) for i, f in pending)
            )
    finally:
        await dispatcher.close()
    if not results:
        emit("nothing to do: no queued upload and no due schedule")
    failed = sum(not r.ok for r in results)
    if results:
        emit(f"{len(results) - failed} succeeded, {failed} failed")
    return 1 if failed else 0
