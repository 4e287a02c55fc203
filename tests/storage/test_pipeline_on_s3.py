"""The whole life of an upload on an S3-compatible store (moto_server): intake puts the file,
the pipeline works on a scratch copy and publishes to the bucket, reports are read back from it,
a missing object is an operator's incident, and the purge deletes the objects."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest_asyncio
from sqlalchemy import select, update

from batchops_core.accounts import UserInfo
from batchops_core.enums import Role, UploadStatus
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database, open_database
from batchops_core.models import Incident, Upload
from batchops_core.pipeline.runner import run_upload
from batchops_core.services import reports
from batchops_core.services.actions import process_again
from batchops_core.services.uploads import UploadInfo, intake_file
from batchops_core.storage import open_store
from batchops_core.worker.automation.frame import run_automation
from batchops_core.worker.context import TaskContext
from tests.s3server import S3Server, make_bucket, storage_settings

CSV = "Student ID,class,maths\n" + "".join(f"S{i:03d},9A,{40 + i}\n" for i in range(1, 21))


@pytest_asyncio.fixture
async def s3_db(db_settings: Settings, s3_server: S3Server) -> AsyncIterator[Database]:
    settings = dataclasses.replace(
        db_settings, storage=storage_settings(s3_server, make_bucket(s3_server))
    )
    database = open_database(settings)
    yield database
    await database.dispose()


async def _keys(settings: Settings, prefix: str) -> list[str]:
    return [info.key async for info in open_store(settings).list(prefix)]


async def _stored_upload(
    db: Database, users: dict[Role, UserInfo], tmp_path: Path
) -> tuple[UploadInfo, str]:
    """A manual upload of CSV, and the key its file is stored under."""
    source = tmp_path / "marks.csv"
    source.write_text(CSV)
    info = await intake_file(db, db.settings, users[Role.USER].actor, source)
    async with db.unit() as uow:
        key = await uow.scalar(select(Upload.stored_path).where(Upload.id == info.id))
    assert key
    return info, key


async def test_an_upload_lives_in_the_bucket_and_reports_read_back(
    s3_db: Database, users: dict[Role, UserInfo], tmp_path: Path
) -> None:
    settings = s3_db.settings
    user = users[Role.USER].actor
    source = tmp_path / "marks.csv"
    source.write_text(CSV)
    info = await intake_file(s3_db, settings, user, source, source="Exams")
    [key] = await _keys(settings, "uploads/")
    assert not settings.storage_path.exists(), "nothing lands on this host's own disk"
    outcome = await run_upload(s3_db, settings, info.id, worker="host-b")
    assert outcome.succeeded, outcome.error_message
    assert outcome.report_csv == f"exports/{info.id}/marks_report.csv"
    assert sorted(await _keys(settings, f"exports/{info.id}/")) == [
        f"exports/{info.id}/marks_report.csv",
        f"exports/{info.id}/marks_report.pdf",
    ]
    assert not (settings.scratch_path / "work" / str(info.id)).exists(), "scratch cleared"

    shutil.rmtree(settings.data_path)  # the TUI host: another disk, the same bucket
    async with s3_db.unit() as uow:
        detail = await reports.get_report(uow, actor=user, upload_id=info.id)
    local = await reports.report_file(settings, detail, reports.ReportFormat.CSV)
    assert local.read_bytes() == await open_store(settings).read_bytes(outcome.report_csv)
    header, rows = reports.csv_head(local)
    assert header and rows
    again = await process_again(s3_db, None, actor=user, upload_id=info.id)
    assert again.sha256 == info.sha256 and len(await _keys(settings, "uploads/")) == 2
    assert key in await _keys(settings, "uploads/")


async def test_a_missing_object_is_an_operator_incident_not_upload_again(
    s3_db: Database, users: dict[Role, UserInfo], tmp_path: Path
) -> None:
    settings = s3_db.settings
    info, key = await _stored_upload(s3_db, users, tmp_path)
    assert await open_store(settings).delete(key)
    outcome = await run_upload(s3_db, settings, info.id, worker="host-b")
    assert (outcome.stage, outcome.error_code) == ("standardize", "STORAGE_MISSING")
    async with s3_db.unit() as uow:
        incident = await uow.get(Incident, outcome.incident_id)
    assert incident is not None and key in incident.message
    assert "[storage] url" in incident.hint and "upload the file again" not in incident.hint.lower()


async def test_a_changed_object_fails_its_checksum(
    s3_db: Database, users: dict[Role, UserInfo], tmp_path: Path
) -> None:
    settings = s3_db.settings
    info, key = await _stored_upload(s3_db, users, tmp_path)
    await open_store(settings).put_bytes(key, CSV.replace("S001", "X001").encode())
    outcome = await run_upload(s3_db, settings, info.id, worker="host-b")
    assert outcome.error_code == "STORAGE_CORRUPT", outcome.error_message


async def test_purge_deletes_the_objects_of_old_uploads(
    s3_db: Database, users: dict[Role, UserInfo], tmp_path: Path
) -> None:
    settings = s3_db.settings
    info, _ = await _stored_upload(s3_db, users, tmp_path)
    assert (await run_upload(s3_db, settings, info.id, worker="w")).succeeded
    async with s3_db.unit() as uow:
        await uow.execute(
            update(Upload)
            .where(Upload.id == info.id)
            .values(created_at=utcnow() - timedelta(days=200), status=UploadStatus.PUBLISHED)
        )
    ctx = TaskContext(db=s3_db, settings=settings, worker="test@host:1")
    result = await run_automation(ctx, "purge_old_records", (), {})
    assert (result["uploads"], result["files"]) == (1, 3)
    assert await _keys(settings, "uploads/") == [] and await _keys(settings, "exports/") == []
