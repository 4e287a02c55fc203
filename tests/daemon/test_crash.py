"""Crash safety for real: SIGKILL a daemon in the middle of an upload, start another one.

The first daemon stalls right after the validate stage (a test hook around `events.publish`)
and is killed there; the upload is then `processing` with a `running` run whose worker will never
beat again. arq would re-deliver the job only after its in-progress key expires (job_timeout +
40 s here), so what finishes the upload within the test's deadline is the second daemon's
sweeper. The final state: published once, one failed run (`WORKER_LOST`), one succeeded run, one
report of each kind, nothing left `processing`.
"""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from batchops_core.enums import RunStatus, UploadStatus
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database, open_database
from batchops_core.models import JobRun, Upload
from batchops_core.permissions import SYSTEM
from batchops_core.services.uploads import intake_file
from batchops_core.worker.dispatcher import Dispatcher
from batchops_core.worker.sweeper import WORKER_LOST
from tests.daemon.conftest import DaemonProcess, fast_worker, wait_for, write_config

GRADEBOOK = "Student ID,class,maths,english\n" + "".join(
    f"S{i:03d},9{'AB'[i % 2]},{40 + i},{60 + i % 30}\n" for i in range(1, 41)
)
Start = Callable[..., DaemonProcess]


async def _crash_and_recover(
    settings: Settings, db: Database, tmp_path: Path, daemons: Start
) -> None:
    settings = fast_worker(settings, job_timeout=60)
    config = write_config(tmp_path / "config.toml", settings)
    source = tmp_path / "in" / "marks.csv"
    source.parent.mkdir()
    source.write_text(GRADEBOOK)
    info = await intake_file(db, settings, SYSTEM, source, source="Exams")

    first = daemons(config, env={"BATCHOPS_TEST_STALL_STAGE": "validate"})
    if settings.uses_redis:
        dispatcher = await Dispatcher.connect(db, settings)
        await dispatcher.enqueue("process_upload", info.id)
        await dispatcher.close()

    async def stalled_mid_run() -> bool:
        async with db.unit() as session:
            upload = await session.get(Upload, info.id)
            running = await session.scalar(
                select(JobRun.id).where(
                    JobRun.upload_id == info.id, JobRun.status == RunStatus.RUNNING
                )
            )
        return bool(
            upload
            and upload.status is UploadStatus.PROCESSING
            and running
            and "stalling at" in first.output()
        )

    await wait_for(stalled_mid_run, timeout=60)
    first.signal(signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL

    second = daemons(config)

    async def finished() -> Upload | None:
        async with db.unit() as session:
            upload = await session.get(Upload, info.id)
        done = upload and upload.status not in (UploadStatus.QUEUED, UploadStatus.PROCESSING)
        return upload if done else None

    upload = await wait_for(finished, timeout=90)
    assert upload.status is UploadStatus.PUBLISHED, (upload.error_code, second.output())
    async with db.unit() as session:
        runs = list(
            await session.scalars(
                select(JobRun).where(JobRun.upload_id == info.id).order_by(JobRun.id)
            )
        )
    assert [(r.status, r.error_code) for r in runs] == [
        (RunStatus.FAILED, WORKER_LOST),
        (RunStatus.SUCCEEDED, None),
    ], second.output()
    assert runs[0].worker != runs[1].worker
    storage = settings.storage_path
    assert upload.report_csv and (storage / upload.report_csv).is_file()
    assert upload.report_pdf and (storage / upload.report_pdf).is_file()
    reports = sorted(p.name for p in (storage / upload.report_csv).parent.iterdir())
    assert len([n for n in reports if n.endswith(".pdf")]) == 1, reports
    second.signal(signal.SIGTERM)
    assert second.wait(timeout=30) == 0, second.output()


async def test_sigkill_mid_upload_with_redis(
    redis_settings: Settings, db: Database, tmp_path: Path, daemons: Start
) -> None:
    await _crash_and_recover(redis_settings, db, tmp_path, daemons)


async def test_sigkill_mid_upload_without_redis(
    settings: Settings, sqlite_url: str, tmp_path: Path, daemons: Start
) -> None:
    local = dataclasses.replace(
        settings, database=dataclasses.replace(settings.database, url=sqlite_url)
    )
    db = open_database(local)
    try:
        await _crash_and_recover(local, db, tmp_path, daemons)
    finally:
        await db.dispose()
