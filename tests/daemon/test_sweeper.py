"""The sweeper: lost runs fail; their uploads are re-queued (bounded) or fail with an incident."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from batchops_core.enums import RunKind, RunStatus, UploadStatus
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Incident, JobRun, Upload
from batchops_core.worker.sweeper import WORKER_LOST, hand_back_upload, sweep_once
from tests.daemon.conftest import fast_worker


async def _upload(db: Database, status: UploadStatus, *, minutes_ago: int = 10) -> int:
    when = utcnow() - timedelta(minutes=minutes_ago)
    async with db.unit() as session:
        upload = Upload(
            filename="marks.csv",
            sha256="0" * 64,
            source="Exams",
            status=status,
            attempt=1,
            created_at=when,
            updated_at=when,
        )
        session.add(upload)
        await session.flush()
        return upload.id


async def _run(
    db: Database,
    *,
    upload_id: int | None,
    minutes_ago: int,
    status: RunStatus = RunStatus.RUNNING,
    error_code: str | None = None,
    worker: str = "daemon@gone:1",
) -> int:
    when = utcnow() - timedelta(minutes=minutes_ago)
    async with db.unit() as session:
        run = JobRun(
            kind=RunKind.PIPELINE if upload_id else RunKind.AUTOMATION,
            task="process_upload" if upload_id else "run_daily_backup",
            upload_id=upload_id,
            status=status,
            worker=worker,
            started_at=when,
            heartbeat_at=when,
            error_code=error_code,
        )
        session.add(run)
        await session.flush()
        return run.id


async def test_lost_run_is_failed_and_its_upload_requeued(
    db: Database, db_settings: Settings
) -> None:
    settings = fast_worker(db_settings)
    upload_id = await _upload(db, UploadStatus.PROCESSING)
    lost = await _run(db, upload_id=upload_id, minutes_ago=5)
    fresh_upload = await _upload(db, UploadStatus.PROCESSING, minutes_ago=0)
    alive = await _run(db, upload_id=fresh_upload, minutes_ago=0, worker="daemon@here:2")

    report = await sweep_once(db, settings)

    assert report.lost_runs == [lost]
    assert report.requeued_uploads == [upload_id]
    async with db.unit() as session:
        run = await session.get(JobRun, lost)
        upload = await session.get(Upload, upload_id)
        other = await session.get(JobRun, alive)
        assert run is not None and run.status is RunStatus.FAILED
        assert run.error_code == WORKER_LOST and run.finished_at is not None
        assert upload is not None and upload.status is UploadStatus.QUEUED
        assert other is not None and other.status is RunStatus.RUNNING
    again = await sweep_once(db, settings)
    assert not again.lost_runs, "a second sweep finds nothing more"


async def test_upload_fails_with_incident_after_max_lost_runs(
    db: Database, db_settings: Settings
) -> None:
    settings = fast_worker(db_settings, max_tries=2)
    upload_id = await _upload(db, UploadStatus.PROCESSING)
    await _run(
        db, upload_id=upload_id, minutes_ago=20, status=RunStatus.FAILED, error_code=WORKER_LOST
    )
    lost = await _run(db, upload_id=upload_id, minutes_ago=5)

    report = await sweep_once(db, settings)

    assert report.failed_uploads == [upload_id] and report.requeued_uploads == []
    async with db.unit() as session:
        upload = await session.get(Upload, upload_id)
        incident = await session.scalar(select(Incident).where(Incident.upload_id == upload_id))
        assert upload is not None and upload.status is UploadStatus.FAILED
        assert upload.error_code == WORKER_LOST
        assert incident is not None and incident.run_id == lost
        assert incident.error_code == WORKER_LOST


async def test_lost_automation_run_becomes_an_incident(db: Database, db_settings: Settings) -> None:
    settings = fast_worker(db_settings)
    lost = await _run(db, upload_id=None, minutes_ago=5)
    report = await sweep_once(db, settings)
    assert report.failed_automation_runs == [lost]
    async with db.unit() as session:
        incident = await session.scalar(select(Incident).where(Incident.run_id == lost))
        assert incident is not None and incident.source == "task:run_daily_backup"


async def test_processing_upload_without_run_is_unstuck(
    db: Database, db_settings: Settings
) -> None:
    settings = fast_worker(db_settings)
    stuck = await _upload(db, UploadStatus.PROCESSING)
    report = await sweep_once(db, settings)
    assert report.requeued_uploads == [stuck]
    async with db.unit() as session:
        upload = await session.get(Upload, stuck)
        assert upload is not None and upload.status is UploadStatus.QUEUED


async def test_hand_back_only_moves_this_workers_upload(
    db: Database, db_settings: Settings
) -> None:
    upload_id = await _upload(db, UploadStatus.PROCESSING, minutes_ago=0)
    run_id = await _run(db, upload_id=upload_id, minutes_ago=0, worker="daemon@a:1")
    assert not await hand_back_upload(db, db_settings, upload_id, worker="daemon@b:2")
    assert await hand_back_upload(db, db_settings, upload_id, worker="daemon@a:1")
    async with db.unit() as session:
        run = await session.get(JobRun, run_id)
        upload = await session.get(Upload, upload_id)
        assert run is not None and run.status is RunStatus.CANCELLED
        assert upload is not None and upload.status is UploadStatus.QUEUED
        count = await session.scalar(select(func.count(Incident.id)))
        assert count == 0, "handing back is not a failure"


async def test_uploads_lost_with_the_redis_queue_are_enqueued_again(
    redis_settings: Settings, db: Database
) -> None:
    from batchops_core.worker.arq_settings import queue_name
    from batchops_core.worker.dispatcher import Dispatcher

    settings = fast_worker(redis_settings)
    waiting = await _upload(db, UploadStatus.QUEUED, minutes_ago=5)
    recent = await _upload(db, UploadStatus.QUEUED, minutes_ago=0)
    dispatcher = await Dispatcher.connect(db, settings)
    try:
        assert dispatcher.pool is not None
        assert await dispatcher.pool.zcard(queue_name(settings)) == 0, "Redis lost the queue"
        await sweep_once(db, settings, dispatcher)
        jobs = await dispatcher.pool.queued_jobs(queue_name=queue_name(settings))
        assert [(j.function, j.args) for j in jobs] == [("process_upload", (waiting,))]
        await sweep_once(db, settings, dispatcher)
        assert await dispatcher.pool.zcard(queue_name(settings)) == 1, "no second copy"
    finally:
        await dispatcher.close()
    assert recent != waiting
