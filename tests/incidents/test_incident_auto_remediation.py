"""End to end: a ';'-delimited CSV read with a configured ',' fails, the known error's
remediation re-reads it with ';', the retry publishes, and the incident resolves itself."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from batchops_core.enums import IncidentStatus, Role, RunStatus, UploadStatus
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import JobRun, Upload
from batchops_core.permissions import Actor
from batchops_core.services.incidents import get_incident, list_incidents
from batchops_core.worker.context import TaskContext
from batchops_core.worker.tasks import process_upload

VIEWER = Actor(id=None, username="viewer", role=Role.USER)


async def _semicolon_upload(db: Database, settings: Settings) -> int:
    text = "student_id;name;class;score\n" + "".join(
        f"S{i:04d};Pupil {i};{'9A' if i % 2 else '9B'};{40 + i}\n" for i in range(40)
    )
    async with db.unit() as session:
        upload = Upload(
            filename="grades.csv",
            sha256=hashlib.sha256(text.encode()).hexdigest(),
            size_bytes=len(text),
            source="manual",
            process_config={"read_options": {"delimiter": ","}},
        )
        session.add(upload)
        await session.flush()
        folder = settings.storage_path / "uploads" / str(upload.id)
        folder.mkdir(parents=True)
        (folder / "grades.csv").write_text(text, encoding="utf-8")
        upload.stored_path = f"uploads/{upload.id}/grades.csv"
        return upload.id


async def test_wrong_delimiter_is_remediated_and_resolved(
    db: Database, db_settings: Settings
) -> None:
    upload_id = await _semicolon_upload(db, db_settings)
    ctx = TaskContext(db=db, settings=db_settings, worker="test-worker")

    outcome = await process_upload(ctx, upload_id)

    assert outcome["error_code"] == "CSV_SINGLE_COLUMN" and not outcome["succeeded"]
    assert outcome["remediation"] == "retrying with reread_delimiter"
    async with db.unit() as session:
        upload = await session.get(Upload, upload_id)
        runs = list(
            await session.scalars(
                select(JobRun).where(JobRun.upload_id == upload_id).order_by(JobRun.id)
            )
        )
        page = await list_incidents(session, actor=VIEWER)
        (row,) = page.items
        detail = await get_incident(session, actor=VIEWER, incident_id=row.id)
    assert upload is not None and upload.status is UploadStatus.PUBLISHED
    assert upload.process_config["read_options"]["delimiter"] == ";"
    assert [r.status for r in runs] == [RunStatus.FAILED, RunStatus.SUCCEEDED]
    assert detail.status is IncidentStatus.RESOLVED and detail.resolved_at is not None
    assert detail.known_error == "Wrong CSV delimiter" and detail.auto_retry_count == 1
    assert detail.ticket is not None and detail.ticket.closed_at is not None
    kinds = [(e.kind, e.actor) for e in detail.timeline]
    assert kinds == [
        ("opened", "system"),
        ("known_error", "system"),
        ("auto_retried", "system"),
        ("auto_resolved", "system"),
    ]
    assert "succeeded" in detail.timeline[-1].detail
    assert detail.corrective_action == detail.timeline[-1].detail
