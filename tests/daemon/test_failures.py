"""What counts as transient, the arq settings built from Settings, and an upload over its job
timeout becoming an incident (the real pipeline, stalled by a hook on its events)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from batchops_core.enums import RunStatus, UploadStatus
from batchops_core.errors import ValidationFailed
from batchops_core.infra import events
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Incident, JobRun, Upload
from batchops_core.permissions import SYSTEM
from batchops_core.services.uploads import intake_file
from batchops_core.worker.arq_settings import queue_name
from batchops_core.worker.dispatcher import Dispatcher
from batchops_core.worker.retry import TransientError, is_transient
from batchops_daemon.service import worker_settings
from tests.daemon.conftest import fast_worker


async def test_real_connection_and_lock_errors_are_transient(tmp_path: Path) -> None:
    refused = create_async_engine(
        "postgresql+asyncpg://postgres@127.0.0.1:1/none", connect_args={"timeout": 2}
    )
    with pytest.raises(Exception) as caught:
        async with refused.connect():
            pass
    await refused.dispose()
    assert is_transient(caught.value), repr(caught.value)

    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}", connect_args={"timeout": 0.1})
    try:
        with pytest.raises(Exception) as caught:
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (1)"))
        assert is_transient(caught.value), repr(caught.value)
    finally:
        holder.close()
        await engine.dispose()

    assert is_transient(TransientError("x"))
    assert not is_transient(ValidationFailed("bad cron"))
    assert not is_transient(ValueError("bad data"))
    assert not is_transient(FileNotFoundError("gone"))


def test_worker_settings_follow_the_configuration(redis_settings: Settings) -> None:
    settings = fast_worker(redis_settings, max_tries=4, job_timeout=120, max_jobs=7)
    kwargs = worker_settings(settings)
    assert kwargs["queue_name"] == queue_name(settings) == f"{settings.redis.prefix}:queue"
    assert (kwargs["max_tries"], kwargs["max_jobs"], kwargs["keep_result"]) == (4, 7, 0)
    assert kwargs["poll_delay"] == settings.worker.poll_delay
    assert kwargs["job_timeout"] > 120, "arq's own timeout leaves the task's room to record it"
    names = {f.name for f in kwargs["functions"]}
    assert {"process_upload", "retry_upload", "run_schedule", "ingest_department"} <= names
    assert kwargs["handle_signals"] is False


async def test_upload_over_its_timeout_becomes_an_incident(
    db: Database, db_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = fast_worker(db_settings, job_timeout=2)
    publish, publish_all = events.publish, events.publish_all

    async def stall_after_validate(s: Settings, event: events.Event) -> None:
        await publish(s, event)
        if event.stage == "validate":
            await asyncio.sleep(30)

    async def stall_after_validate_among(s: Settings, batch: list[events.Event]) -> None:
        await publish_all(s, batch)
        if any(event.stage == "validate" for event in batch):
            await asyncio.sleep(30)

    monkeypatch.setattr(events, "publish", stall_after_validate)
    monkeypatch.setattr(events, "publish_all", stall_after_validate_among)
    source = tmp_path / "marks.csv"
    source.write_text("Student ID,maths\nS1,50\nS2,60\n")
    info = await intake_file(db, settings, SYSTEM, source, source="Exams")
    dispatcher = Dispatcher(db, settings)
    try:
        result = await dispatcher.run_now("process_upload", info.id)
    finally:
        await dispatcher.close()
    assert result["error_code"] == "JOB_TIMEOUT" and result["incident_id"]
    async with db.unit() as session:
        upload = await session.get(Upload, info.id)
        run = await session.scalar(select(JobRun).where(JobRun.upload_id == info.id))
        incident = await session.get(Incident, result["incident_id"])
    assert upload is not None and upload.status is UploadStatus.FAILED
    assert upload.error_code == "JOB_TIMEOUT"
    assert run is not None and run.status is RunStatus.FAILED and run.error_code == "JOB_TIMEOUT"
    assert incident is not None and incident.upload_id == info.id
