"""Automation tasks for real: ingests, fetch from a local HTTP server, backup, purge, mail."""

from __future__ import annotations

import csv
import http.server
import io
import json
import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from batchops_core.accounts import UserInfo
from batchops_core.enums import IncidentStatus, Role, RunKind, RunStatus, UploadStatus
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import (
    Department,
    DepartmentRecord,
    Incident,
    JobRun,
    Upload,
    User,
)
from batchops_core.worker.arq_settings import queue_name
from batchops_core.worker.automation.frame import run_automation
from batchops_core.worker.context import TaskContext
from batchops_core.worker.dispatcher import Dispatcher
from tests.daemon.conftest import MailServer, smtp_settings


async def _ctx(db: Database, settings: Settings) -> TaskContext:
    """A task context whose follow-ups go to Redis (no worker runs them here)."""
    dispatcher = await Dispatcher.connect(db, settings)
    return TaskContext(db=db, settings=settings, worker="test@host:1", dispatcher=dispatcher)


async def _queued_jobs(ctx: TaskContext) -> int:
    assert ctx.dispatcher is not None and ctx.dispatcher.pool is not None
    return int(await ctx.dispatcher.pool.zcard(queue_name(ctx.settings)))


async def test_ingest_department_writes_new_records_once(
    redis_settings: Settings, db: Database
) -> None:
    ctx = await _ctx(db, redis_settings)
    try:
        first = await run_automation(ctx, "ingest_department", (), {"department": "library"})
        assert first["status"] == "succeeded" and first["records"] == 40
        async with db.unit() as session:
            upload = await session.get(Upload, first["upload_id"])
            dept = await session.scalar(select(Department).where(Department.name == "Library"))
            assert upload is not None and dept is not None
            assert upload.status is UploadStatus.QUEUED and upload.department_id == dept.id
            assert upload.stored_path.startswith("uploads/"), "a storage key"
            stored = redis_settings.storage_path / upload.stored_path
            rows = list(csv.DictReader(io.StringIO(stored.read_text())))
            assert len(rows) == 40 and rows[0]["student_id"] == "S01000"
            assert upload.size_bytes == stored.stat().st_size
        assert await _queued_jobs(ctx) == 1

        again = await run_automation(ctx, "ingest_department", (), {"department": "Library"})
        assert again["status"] == "skipped" and again["records"] == 0
        assert await _queued_jobs(ctx) == 1, "nothing new: no upload, no job"

        async with db.unit() as session:
            session.add(
                DepartmentRecord(department_id=dept.id, student_id="S09999", payload={"x": 1})
            )
        third = await run_automation(ctx, "ingest_department", (), {"department": "Library"})
        assert third["records"] == 1
        async with db.unit() as session:
            kinds = (
                await session.execute(
                    select(JobRun.kind, JobRun.status).where(JobRun.task == "ingest_department")
                )
            ).all()
        assert kinds == [
            (RunKind.AUTOMATION, RunStatus.SUCCEEDED),
            (RunKind.AUTOMATION, RunStatus.SKIPPED),
            (RunKind.AUTOMATION, RunStatus.SUCCEEDED),
        ]
    finally:
        await ctx.dispatcher.close()  # type: ignore[union-attr]


async def test_ingest_all_then_unknown_department(redis_settings: Settings, db: Database) -> None:
    ctx = await _ctx(db, redis_settings)
    try:
        everything = await run_automation(ctx, "ingest_all_departments", (), {})
        assert everything["status"] == "succeeded" and len(everything["uploads"]) == 5
        nothing = await run_automation(ctx, "ingest_all_departments", (), {})
        assert nothing["status"] == "skipped"
        unknown = await run_automation(ctx, "ingest_department", (), {"department": "Nope"})
        assert unknown["status"] == "failed" and "no department named" in unknown["message"]
        async with db.unit() as session:
            incident = await session.get(Incident, unknown["incident_id"])
            assert incident is not None and incident.source == "task:ingest_department"
    finally:
        await ctx.dispatcher.close()  # type: ignore[union-attr]


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server over a temporary directory: (base URL, directory)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


async def test_fetch_url_creates_an_upload(
    redis_settings: Settings, db: Database, http_root: tuple[str, Path]
) -> None:
    base, root = http_root
    (root / "fees.csv").write_text("student_id,amount\nS1,100\nS2,250\n")
    ctx = await _ctx(db, redis_settings)
    try:
        done = await run_automation(ctx, "fetch_url", (f"{base}/fees.csv",), {"department": "Fees"})
        assert done["status"] == "succeeded"
        async with db.unit() as session:
            upload = await session.get(Upload, done["upload_id"])
            assert upload is not None and upload.filename == "fees.csv"
            stored = redis_settings.storage_path / upload.stored_path
            assert stored.read_text().startswith("student_id,amount")
            assert upload.source == "Fees"
        assert await _queued_jobs(ctx) == 1

        missing = await run_automation(ctx, "fetch_url", (f"{base}/missing.csv",), {})
        assert missing["status"] == "failed" and "HTTP 404" in missing["message"]
        assert missing["incident_id"] is not None
    finally:
        await ctx.dispatcher.close()  # type: ignore[union-attr]


async def test_backup_writes_snapshot_and_stored_files_with_rotation(
    db: Database, db_settings: Settings
) -> None:
    """The nightly task through the automation frame; tests/backup covers restores."""
    from batchops_core.storage import open_store

    await open_store(db_settings).put_bytes("uploads/7/marks.csv", b"a,b\n1,2\n")
    async with db.unit() as session:
        session.add(
            Upload(filename="marks.csv", sha256="0" * 64, stored_path="uploads/7/marks.csv")
        )
    ctx = TaskContext(db=db, settings=db_settings, worker="test@host:1")
    results = [await run_automation(ctx, "run_daily_backup", (), {"keep": 2}) for _ in range(3)]
    assert [r["status"] for r in results] == ["succeeded"] * 3
    backups = sorted((db_settings.data_path / "backups").glob("backup-*"))
    assert [b.name for b in backups] == [r["name"] for r in results[1:]]
    manifest = json.loads((backups[-1] / "manifest.json").read_text())
    assert [(o["key"], o["size"]) for o in manifest["objects"]] == [("uploads/7/marks.csv", 8)]
    assert (backups[-1] / "objects" / "uploads/7/marks.csv").read_bytes() == b"a,b\n1,2\n"
    departments = next(t for t in manifest["tables"] if t["name"] == "departments")
    assert departments["rows"] == 5 and (backups[-1] / departments["key"]).is_file()


async def test_purge_deletes_old_rows_and_files_together(
    db: Database, db_settings: Settings
) -> None:
    old = utcnow() - timedelta(days=120)
    storage = db_settings.storage_path
    async with db.unit() as session:
        stale = Upload(
            filename="old.csv", sha256="1" * 64, status=UploadStatus.PUBLISHED, created_at=old
        )
        fresh = Upload(filename="new.csv", sha256="2" * 64, status=UploadStatus.PUBLISHED)
        waiting = Upload(
            filename="wait.csv", sha256="3" * 64, status=UploadStatus.QUEUED, created_at=old
        )
        session.add_all([stale, fresh, waiting])
        await session.flush()
        report = storage / "exports" / str(stale.id) / "old_report.csv"
        stale.report_csv = f"exports/{stale.id}/old_report.csv"
        for upload in (stale, fresh, waiting):
            upload.stored_path = f"uploads/{upload.id}/f.csv"
        session.add(
            JobRun(kind=RunKind.AUTOMATION, task="noop", status=RunStatus.SUCCEEDED, created_at=old)
        )
        session.add(
            Incident(
                title="old",
                error_code="X",
                message="m",
                fingerprint="f",
                status=IncidentStatus.ARCHIVED,
                archived_at=old,
                created_at=old,
            )
        )
        ids = (stale.id, fresh.id, waiting.id)
    for upload_id in ids:
        (storage / "uploads" / str(upload_id)).mkdir(parents=True)
        (storage / "uploads" / str(upload_id) / "f.csv").write_text("x\n")
    report.parent.mkdir(parents=True)
    report.write_text("r\n")
    orphan = storage / "exports" / "999" / "left_by_a_crash.csv"
    orphan.parent.mkdir(parents=True)
    orphan.write_text("o\n")
    young_orphan = storage / "uploads" / "in-flight" / "intake.csv"
    young_orphan.parent.mkdir(parents=True)
    young_orphan.write_text("i\n")
    staged = storage / ".staging" / "interrupted.part"
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_text("half")
    two_days_ago = (utcnow() - timedelta(days=2)).timestamp()
    for old_file in (orphan, staged):
        os.utime(old_file, (two_days_ago, two_days_ago))

    ctx = TaskContext(db=db, settings=db_settings, worker="test@host:1")
    result = await run_automation(ctx, "purge_old_records", (), {})

    assert result["status"] == "succeeded"
    assert (result["uploads"], result["files"], result["runs"], result["incidents"]) == (1, 2, 1, 1)
    assert result["orphans"] == 2 and not orphan.exists(), "an old object nobody names is swept"
    assert not staged.exists(), "so is a put a crash interrupted"
    assert young_orphan.exists(), "an object younger than a day may be an intake in flight"
    assert not (storage / "uploads" / str(ids[0])).exists() and not report.exists()
    assert (storage / "uploads" / str(ids[1])).exists() and (
        storage / "uploads" / str(ids[2])
    ).exists()
    async with db.unit() as session:
        left = set(await session.scalars(select(Upload.id)))
        assert left == {ids[1], ids[2]}, "unfinished and recent uploads stay"
        assert await session.scalar(select(func.count(Incident.id))) == 0
    again = await run_automation(ctx, "purge_old_records", (), {})
    assert again["status"] == "skipped"


async def test_reminders_and_digest_go_through_smtp(
    db: Database, db_settings: Settings, users: dict[Role, UserInfo], mailserver: MailServer
) -> None:
    settings = smtp_settings(db_settings, mailserver)
    async with db.unit() as session:
        exams = await session.scalar(select(Department.id).where(Department.name == "Exams"))
        await session.execute(
            update(Department).where(Department.id != exams).values(last_submitted_at=utcnow())
        )
        await session.execute(
            update(User).where(User.id == users[Role.USER].id).values(department_id=exams)
        )
    ctx = TaskContext(db=db, settings=settings, worker="test@host:1")
    reminded = await run_automation(ctx, "send_attendance_reminders", (), {})
    assert reminded["status"] == "succeeded" and reminded["reminded"] == ["Exams"]
    mail = mailserver.last()
    assert sorted(mail.recipients) == sorted([users[Role.USER].email, "exams@school.example"])
    assert "Exams" in mail.subject

    digest = await run_automation(ctx, "send_system_status_digest", (), {})
    assert digest["status"] == "succeeded"
    mail = mailserver.last()
    assert mail.recipients == [users[Role.ADMIN].email]
    assert "Open incidents: 0" in mail.text and "send_attendance_reminders" not in mail.text
    assert "succeeded" in mail.text, "today's runs are counted"


async def test_mail_tasks_without_smtp_fail_clearly(db: Database, db_settings: Settings) -> None:
    ctx = TaskContext(db=db, settings=db_settings, worker="test@host:1")
    result = await run_automation(ctx, "send_system_status_digest", (), {})
    assert result["status"] == "failed" and "[smtp] host" in result["message"]
