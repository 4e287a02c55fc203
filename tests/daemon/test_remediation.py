"""A known error's remediation retries the upload with the fix, and its success resolves the
incident automatically (the real pipeline, the embedded worker, both databases)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from batchops_core.enums import IncidentStatus, RunStatus, UploadStatus
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Incident, IncidentEvent, JobRun, Upload
from batchops_core.permissions import SYSTEM
from batchops_core.services.uploads import intake_file
from batchops_core.worker.dispatcher import Dispatcher
from tests.daemon.conftest import fast_worker

LATE_CP1252 = (
    "Student ID,name,class,maths\n"
    + "".join(f"S{i:05d},Student {i},9A,{50 + i % 40}\n" for i in range(1, 12001))
).encode() + "S99999,Renée Dupré,9B,77\n".encode("cp1252")
"""UTF-8 at the start, cp1252 further down: the known error re-reads it as cp1252."""


async def test_encoding_remediation_retries_and_resolves(
    db: Database, db_settings: Settings, tmp_path: Path
) -> None:
    settings = fast_worker(db_settings)
    source = tmp_path / "marks.csv"
    source.write_bytes(LATE_CP1252)
    info = await intake_file(db, settings, SYSTEM, source, source="Exams")
    dispatcher = Dispatcher(db, settings)
    try:
        first = await dispatcher.run_now("process_upload", info.id)
        await dispatcher.wait_idle()
    finally:
        await dispatcher.close()
    assert first["error_code"] == "CSV_ENCODING", first
    assert first["remediation"] == "retrying with reread_encoding"
    async with db.unit() as session:
        upload = await session.get(Upload, info.id)
        incident = await session.get(Incident, first["incident_id"])
        runs = list(
            await session.scalars(
                select(JobRun.status).where(JobRun.upload_id == info.id).order_by(JobRun.id)
            )
        )
        entries = (
            await session.execute(
                select(IncidentEvent.kind, IncidentEvent.detail)
                .where(IncidentEvent.incident_id == first["incident_id"])
                .order_by(IncidentEvent.id)
            )
        ).all()
        timeline = [kind for kind, _ in entries]
    assert upload is not None and upload.status is UploadStatus.PUBLISHED
    assert upload.process_config["read_options"]["encoding"] == "cp1252"
    assert upload.rows_out == 12001
    assert runs == [RunStatus.FAILED, RunStatus.SUCCEEDED]
    assert incident is not None and incident.status is IncidentStatus.RESOLVED
    assert incident.auto_retry_count == 1
    assert timeline[-1] == "auto_resolved" and "auto_retried" in timeline
    retried = next(detail for kind, detail in entries if kind == "auto_retried")
    assert "encoding 'cp1252'" in retried, retried
