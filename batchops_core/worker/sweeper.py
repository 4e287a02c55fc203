"""The sweeper: the database, not Redis, decides what happened to work whose worker vanished.

arq delivers at least once, but a job whose worker was SIGKILLed is re-run only after its
in-progress key expires (job_timeout + 10 s), never with `max_tries` exhausted, and not at all if
Redis lost the queue. So every daemon sweeps: a `running` JobRun whose heartbeat (bumped by the
worker executing it, see `workers.py`) is older than `stale_after_seconds` is marked failed with
`WORKER_LOST`; its upload goes back to `queued` and is enqueued again while fewer than
`max_tries` runs were lost, else it fails with an incident. Each move is a conditional UPDATE, so
two sweepers (or a sweeper and a slow worker) never both win.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Update, and_, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core.enums import RunKind, RunStatus, UploadStatus
from batchops_core.incidents import FailureInfo, record_stage_failure, record_task_failure
from batchops_core.infra import events
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import JobRun, Upload
from batchops_core.worker.arq_settings import queue_name

if TYPE_CHECKING:
    from batchops_core.worker.dispatcher import Dispatcher

log = logging.getLogger(__name__)

WORKER_LOST = "WORKER_LOST"
HANDED_BACK = "HANDED_BACK"


def _running_runs(upload_id: int, worker: str | None):  # type: ignore[no-untyped-def]
    conditions = [JobRun.upload_id == upload_id, JobRun.status == RunStatus.RUNNING]
    if worker is not None:
        conditions.append(JobRun.worker == worker)
    return and_(*conditions)


def _requeue_idle_upload(upload_id: int) -> Update:
    """Put a `processing` upload back to `queued`, unless a run of it is still running."""
    return (
        update(Upload)
        .where(
            Upload.id == upload_id,
            Upload.status == UploadStatus.PROCESSING,
            ~exists().where(_running_runs(upload_id, None)),
        )
        .values(status=UploadStatus.QUEUED)
    )


async def _publish_upload(settings: Settings, upload_id: int, status: UploadStatus) -> None:
    await events.publish(
        settings, events.Event(type="upload.updated", id=upload_id, status=status.value)
    )


async def hand_back_upload(
    db: Database, settings: Settings, upload_id: int, *, worker: str
) -> bool:
    """Cancel this worker's running run of the upload and put the upload back in `queued`.

    Used when a job is cancelled (shutdown, lost slot) or hit a transient failure, so that the
    re-delivered job can claim the upload again. Returns whether the upload was handed back.
    """
    now = utcnow()
    async with db.unit() as session:
        await session.execute(
            update(JobRun)
            .where(_running_runs(upload_id, worker))
            .values(
                status=RunStatus.CANCELLED,
                finished_at=now,
                error_code=HANDED_BACK,
                error_message="the worker stopped this run; the upload was queued again.",
            )
        )
        moved = await session.execute(_requeue_idle_upload(upload_id))
    handed = bool(moved.rowcount)  # type: ignore[attr-defined]
    if handed:
        await _publish_upload(settings, upload_id, UploadStatus.QUEUED)
    return handed


async def fail_upload(
    db: Database,
    settings: Settings,
    upload_id: int,
    *,
    worker: str | None,
    code: str,
    message: str,
) -> int | None:
    """Fail the upload (and this worker's running run of it) with an incident; return its id.

    Only an upload still `queued` or `processing` moves, so a run that finished meanwhile is
    left alone and no incident is recorded for it.
    """
    now = utcnow()
    async with db.unit() as session:
        run_id = await session.scalar(
            select(JobRun.id)
            .where(_running_runs(upload_id, worker))
            .order_by(JobRun.id.desc())
            .limit(1)
        )
        await session.execute(
            update(JobRun)
            .where(_running_runs(upload_id, worker))
            .values(
                status=RunStatus.FAILED, finished_at=now, error_code=code, error_message=message
            )
        )
        incident_id = await _fail_upload_row(
            session, settings, upload_id, code=code, message=message, run_id=run_id
        )
    if incident_id is not None:
        await _publish_upload(settings, upload_id, UploadStatus.FAILED)
        await events.publish(
            settings, events.Event(type="incident.updated", id=incident_id, status="open")
        )
    return incident_id


async def _fail_upload_row(
    session: AsyncSession,
    settings: Settings,
    upload_id: int,
    *,
    code: str,
    message: str,
    run_id: int | None,
) -> int | None:
    upload = await session.get(Upload, upload_id)
    if upload is None:
        return None
    moved = await session.execute(
        update(Upload)
        .where(
            Upload.id == upload_id,
            Upload.status.in_([UploadStatus.QUEUED, UploadStatus.PROCESSING]),
        )
        .values(status=UploadStatus.FAILED, error_code=code, error_message=message)
    )
    if not moved.rowcount:  # type: ignore[attr-defined]
        return None
    failure = FailureInfo(code=code, message=message, stage=upload.current_stage)
    return await record_stage_failure(
        session,
        source=upload.source,
        failure=failure,
        upload_id=upload_id,
        run_id=run_id,
        settings=settings,
    )


@dataclass
class SweepReport:
    """What one sweep changed; the daemon logs it and the tests assert on it."""

    lost_runs: list[int] = field(default_factory=list)
    requeued_uploads: list[int] = field(default_factory=list)
    failed_uploads: list[int] = field(default_factory=list)
    failed_automation_runs: list[int] = field(default_factory=list)
    incidents: list[int] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.lost_runs or self.requeued_uploads or self.failed_uploads)


async def sweep_once(
    db: Database,
    settings: Settings,
    dispatcher: Dispatcher | None = None,
    *,
    now: datetime | None = None,
) -> SweepReport:
    """Find runs whose heartbeat stopped and re-queue or fail them; re-enqueue stuck uploads."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=settings.worker.stale_after_seconds)
    report = SweepReport()
    to_enqueue: list[tuple[int, str]] = []
    async with db.unit() as session:
        last_sign = func.coalesce(JobRun.heartbeat_at, JobRun.started_at, JobRun.created_at)
        stale = (
            await session.execute(
                select(JobRun.id, JobRun.kind, JobRun.upload_id, JobRun.task, JobRun.worker)
                .where(JobRun.status == RunStatus.RUNNING, last_sign < cutoff)
                .order_by(JobRun.id)
                .limit(500)
            )
        ).all()
    for run_id, kind, upload_id, task, worker in stale:
        message = (
            f"worker {worker or '?'} stopped heart-beating for over "
            f"{settings.worker.stale_after_seconds} s while running this."
        )
        async with db.unit() as session:
            won = await session.execute(
                update(JobRun)
                .where(JobRun.id == run_id, JobRun.status == RunStatus.RUNNING, last_sign < cutoff)
                .values(
                    status=RunStatus.FAILED,
                    finished_at=now,
                    error_code=WORKER_LOST,
                    error_message=message,
                )
            )
            if not won.rowcount:  # type: ignore[attr-defined]
                continue
            report.lost_runs.append(run_id)
            if kind == RunKind.PIPELINE and upload_id is not None:
                await _recover_upload(session, settings, upload_id, run_id, message, report)
                if upload_id in report.requeued_uploads:
                    to_enqueue.append((upload_id, f"{settings.redis.prefix}:sweep:{run_id}"))
            else:
                failure = FailureInfo(code=WORKER_LOST, message=message)
                incident_id = await record_task_failure(
                    session, task=task, failure=failure, run_id=run_id, settings=settings
                )
                report.failed_automation_runs.append(run_id)
                report.incidents.append(incident_id)
    queue_depth = await _queue_depth(dispatcher, settings)
    await _find_stuck_uploads(db, settings, cutoff, report, to_enqueue, queue_depth)
    for upload_id, job_id in to_enqueue:
        if dispatcher is not None:
            await dispatcher.process_upload(upload_id, job_id=job_id)
    for run_id in report.lost_runs:
        await events.publish(
            settings, events.Event(type="run.updated", id=run_id, status=RunStatus.FAILED.value)
        )
    for upload_id in report.requeued_uploads:
        await _publish_upload(settings, upload_id, UploadStatus.QUEUED)
    for upload_id in report.failed_uploads:
        await _publish_upload(settings, upload_id, UploadStatus.FAILED)
    if report.changed:
        log.warning(
            "sweeper: %d lost runs, re-queued uploads %s, failed uploads %s",
            len(report.lost_runs),
            report.requeued_uploads,
            report.failed_uploads,
        )
    return report


async def _queue_depth(dispatcher: Dispatcher | None, settings: Settings) -> int | None:
    """Jobs waiting in arq, or None without Redis (or when Redis does not answer)."""
    if dispatcher is None or dispatcher.pool is None:
        return None
    try:
        return int(await dispatcher.pool.zcard(queue_name(settings)))
    except Exception as exc:  # Redis down: enqueueing would fail as well
        log.warning("sweeper: cannot read the queue depth: %s", exc)
        return None


async def _recover_upload(
    session: AsyncSession,
    settings: Settings,
    upload_id: int,
    run_id: int,
    message: str,
    report: SweepReport,
) -> None:
    lost = await session.scalar(
        select(func.count(JobRun.id)).where(
            JobRun.upload_id == upload_id, JobRun.error_code == WORKER_LOST
        )
    )
    if (lost or 0) < settings.worker.max_tries:
        moved = await session.execute(_requeue_idle_upload(upload_id))
        if moved.rowcount:  # type: ignore[attr-defined]
            report.requeued_uploads.append(upload_id)
        return
    incident_id = await _fail_upload_row(
        session,
        settings,
        upload_id,
        code=WORKER_LOST,
        message=f"{message} Gave up after {lost} lost runs.",
        run_id=run_id,
    )
    if incident_id is not None:
        report.failed_uploads.append(upload_id)
        report.incidents.append(incident_id)


async def _find_stuck_uploads(
    db: Database,
    settings: Settings,
    cutoff: datetime,
    report: SweepReport,
    to_enqueue: list[tuple[int, str]],
    queue_depth: int | None,
) -> None:
    """Uploads `processing` with no running run, or `queued` for long: enqueue them again.

    A crash between claiming an upload and writing its run, or a Redis that lost its queue,
    leaves such uploads; re-enqueueing is safe because the runner claims by conditional UPDATE.
    Long-`queued` uploads are enqueued again only when the arq queue holds fewer jobs than there
    are such uploads (they cannot all be waiting in it), so a mere backlog is not doubled.
    `queue_depth` None (no Redis) leaves them to the in-process worker, which polls the table.
    """
    no_run = ~exists().where(JobRun.upload_id == Upload.id, JobRun.status == RunStatus.RUNNING)
    async with db.unit() as session:
        moved = (
            await session.scalars(
                update(Upload)
                .where(
                    Upload.status == UploadStatus.PROCESSING,
                    Upload.updated_at < cutoff,
                    no_run,
                )
                .values(status=UploadStatus.QUEUED)
                .returning(Upload.id)
            )
        ).all()
        waiting = (
            await session.execute(
                select(Upload.id, Upload.updated_at)
                .where(Upload.status == UploadStatus.QUEUED, Upload.updated_at < cutoff)
                .order_by(Upload.id)
                .limit(1000)
            )
        ).all()
    for upload_id in moved:
        report.requeued_uploads.append(upload_id)
        to_enqueue.append((upload_id, f"{settings.redis.prefix}:unstick:{upload_id}"))
    seen = {u for u, _ in to_enqueue}
    if queue_depth is None or queue_depth >= len(waiting):
        return
    for upload_id, updated_at in waiting:
        if upload_id in seen:
            continue
        stamp = int(updated_at.timestamp())
        to_enqueue.append((upload_id, f"{settings.redis.prefix}:requeue:{upload_id}:{stamp}"))
