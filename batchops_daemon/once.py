"""`batchops-daemon --once`: every queued upload and every due schedule, run here, then exit.

Work runs in this process through the embedded dispatcher (the same task bodies as the daemon),
with or without Redis. A sweep first returns uploads left `processing` by a crashed worker to the
queue. Follow-up uploads that a schedule creates (an ingest, a fetch) are processed in the same
invocation. One line per item; exit 0 when every item succeeded, 1 otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from batchops_core.enums import RunStatus, UploadStatus
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.services.status import queued_uploads, wait_until_final
from batchops_core.worker import scheduler
from batchops_core.worker.dispatcher import Dispatcher
from batchops_core.worker.heartbeat import worker_name
from batchops_core.worker.sweeper import sweep_once

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


async def _one_upload(
    db: Database, settings: Settings, dispatcher: Dispatcher, upload_id: int, name: str
) -> ItemResult:
    await dispatcher.process_upload_now(upload_id)
    # Another worker may hold it: wait for its final state, whoever processes it.
    final = await wait_until_final(db, [upload_id], timeout=settings.worker.job_timeout + 30)
    upload = final[0] if final else None
    if upload is None:
        return ItemResult("upload", upload_id, name, "vanished", False)
    detail = ""
    if upload.status is UploadStatus.FAILED:
        detail = f"{upload.error_code or ''} {upload.error_message or ''}".strip()[:160]
    elif upload.rows_out is not None:
        detail = f"{upload.rows_out} rows"
    ok = upload.status.is_success or upload.status is UploadStatus.DUPLICATE
    return ItemResult("upload", upload_id, name, upload.status.value, ok, detail)


async def _one_schedule(
    dispatcher: Dispatcher, job_id: int, name: str, fired_for: str
) -> ItemResult:
    result = await dispatcher.run_schedule_now(job_id, fired_for) or {}
    status = str(result.get("status", "failed"))
    detail = str(result.get("message") or result.get("reason") or "")[:160]
    return ItemResult("schedule", job_id, name, status, status in OK_RUNS, detail)


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
        due = await scheduler.claim_due_firings(db)
        await asyncio.gather(
            *(
                bounded(_one_schedule(dispatcher, f.job_id, name, f.scheduled_for.isoformat()))
                for f, name in due
            )
        )
        seen: set[int] = set()
        for _ in range(MAX_PASSES):
            await dispatcher.wait_idle()
            async with db.unit() as session:
                pending = await queued_uploads(session, exclude=frozenset(seen))
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
