"""Deterministic data for the TUI tests and snapshots: fixed ids, names and times around NOW.

Rows are written with Core inserts (the screens read them through the real services); the
report files are real CSV/PDF files so that previews and exports run for real.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, insert, select, update

from batchops_core.accounts import UserInfo, create_user
from batchops_core.enums import (
    IncidentStatus,
    ProcessMode,
    Role,
    RunKind,
    RunStatus,
    Severity,
    Stage,
    StepStatus,
    UploadStatus,
)
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import (
    Department,
    Incident,
    IncidentEvent,
    Job,
    JobRun,
    JobRunStep,
    Ticket,
    Upload,
    WorkerHeartbeat,
)
from batchops_core.permissions import SYSTEM

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
PASSWORD = "correct-horse-battery"
USERNAMES = {Role.ADMIN: "ada", Role.MODERATOR: "mona", Role.USER: "uma"}


async def seed_users(db: Database, settings: Settings) -> dict[Role, UserInfo]:
    made = {}
    async with db.unit() as session:
        for role, name in USERNAMES.items():
            made[role] = await create_user(
                session,
                actor=SYSTEM,
                username=name,
                email=f"{name}@school.example",
                role=role,
                password=PASSWORD,
                policy=settings.security,
                verified=True,
            )
        await create_user(
            session,
            actor=SYSTEM,
            username="newbie",
            email="newbie@school.example",
            role=Role.USER,
            password=PASSWORD,
            policy=settings.security,
            verified=False,
        )
    return made


def _write_reports(storage: Path, upload_id: int) -> tuple[str, str]:
    """Report files in the local store; returns their storage keys."""
    from fpdf import FPDF

    folder = storage / "exports" / str(upload_id)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / f"upload-{upload_id}.csv"
    csv_path.write_text(
        "student_id,name,score\n"
        + "".join(f"S{i:03d},Student {i},{50 + i}\n" for i in range(1, 9)),
        encoding="utf-8",
    )
    pdf_path = folder / f"upload-{upload_id}.pdf"
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(text=f"BatchOps report for upload {upload_id}")
    pdf.ln()
    pdf.cell(text="Mean score 54.5, 8 rows published")
    pdf.output(str(pdf_path))
    return (
        csv_path.relative_to(storage).as_posix(),
        pdf_path.relative_to(storage).as_posix(),
    )


async def seed_activity(db: Database, settings: Settings, users: dict[Role, UserInfo]) -> None:
    """Uploads, runs with steps, incidents with timeline and ticket, heartbeats, fixed times."""
    storage = settings.storage_path
    async with db.unit() as session:
        dept = (
            await session.execute(select(Department.id, Department.name).order_by(Department.id))
        ).all()
        fees, exams = dept[0].id, dept[1].id
        jobs = (await session.execute(select(Job.id).order_by(Job.id))).scalars().all()
        # Freeze the seeded schedules' firing times so the screens do not depend on today.
        for i, job_id in enumerate(jobs):
            await session.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(
                    next_run_at=NOW + timedelta(hours=i + 1),
                    last_run_at=NOW - timedelta(hours=24 - i),
                    last_status=RunStatus.FAILED if i == 1 else RunStatus.SUCCEEDED,
                )
            )
        uploads = []
        for i in range(1, 7):
            status = [
                UploadStatus.PUBLISHED,
                UploadStatus.PUBLISHED,
                UploadStatus.FAILED,
                UploadStatus.PARTIAL,
                UploadStatus.PROCESSING,
                UploadStatus.QUEUED,
            ][i - 1]
            report_csv = report_pdf = None
            if status in (UploadStatus.PUBLISHED, UploadStatus.PARTIAL):
                report_csv, report_pdf = _write_reports(storage, i)
            uploads.append(
                {
                    "id": i,
                    "filename": f"grades-{i:02d}.csv",
                    "sha256": f"{i:064d}",
                    "size_bytes": 1000 * i,
                    "source": "manual",
                    "department_id": fees if i % 2 else exams,
                    "uploader_id": users[Role.USER].id,
                    "status": status,
                    "current_stage": Stage.VALIDATE if status is UploadStatus.PROCESSING else None,
                    "process_mode": ProcessMode.TRANSFORM,
                    "process_config": {},
                    "rows_in": 10 * i,
                    "rows_out": 8 * i if report_csv else None,
                    "rows_quarantined": 2 if status is UploadStatus.PARTIAL else 0,
                    "report_csv": report_csv,
                    "report_pdf": report_pdf,
                    "summary": {"rows": 8 * i, "mean score": 54.5} if report_csv else None,
                    "created_at": NOW - timedelta(hours=i),
                    "updated_at": NOW - timedelta(hours=i),
                    "published_at": NOW - timedelta(hours=i, minutes=-5) if report_csv else None,
                }
            )
        await session.execute(insert(Upload), uploads)
        runs, steps = [], []
        for i in range(1, 13):
            failed = i % 4 == 3
            kind = RunKind.PIPELINE if i <= 6 else RunKind.AUTOMATION
            started = NOW - timedelta(hours=i, minutes=1)
            runs.append(
                {
                    "id": i,
                    "kind": kind,
                    "task": "process_upload" if kind is RunKind.PIPELINE else "run_daily_backup",
                    "upload_id": i if kind is RunKind.PIPELINE else None,
                    "job_id": None if kind is RunKind.PIPELINE else jobs[0],
                    "department_id": fees,
                    "status": RunStatus.FAILED if failed else RunStatus.SUCCEEDED,
                    "attempt": 1,
                    "worker": "worker-a",
                    "created_at": started,
                    "started_at": started,
                    "finished_at": started + timedelta(seconds=3 + i),
                    "rows_in": 10 * i,
                    "rows_out": 8 * i,
                    "error_code": "SCHEMA_MISSING_COLUMN" if failed else None,
                    "error_message": "column 'score' is missing" if failed else None,
                    "log": [f"run {i} started"],
                }
            )
            if kind is RunKind.PIPELINE:
                for pos, stage in enumerate(Stage):
                    status = StepStatus.SUCCEEDED
                    if failed and stage is Stage.VALIDATE:
                        status = StepStatus.FAILED
                    elif failed and pos > 1:
                        status = StepStatus.SKIPPED
                    steps.append(
                        {
                            "run_id": i,
                            "stage": stage,
                            "position": pos,
                            "status": status,
                            "started_at": started,
                            "duration_ms": 120.0 * (pos + 1),
                            "rows_in": 10 * i,
                            "rows_out": 8 * i,
                            "log": [f"{stage.value} ok"],
                        }
                    )
        await session.execute(insert(JobRun), runs)
        await session.execute(insert(JobRunStep), steps)
        incidents = []
        for i in range(1, 6):
            status = [
                IncidentStatus.OPEN,
                IncidentStatus.OPEN,
                IncidentStatus.IN_PROGRESS,
                IncidentStatus.RESOLVED,
                IncidentStatus.OPEN,
            ][i - 1]
            incidents.append(
                {
                    "id": i,
                    "title": f"manual: SCHEMA_MISSING_COLUMN at validate ({i})",
                    "source": "manual",
                    "upload_id": 3 if i == 1 else None,
                    "run_id": 3 if i == 1 else None,
                    "stage": Stage.VALIDATE,
                    "error_code": "SCHEMA_MISSING_COLUMN",
                    "message": "column 'score' is missing",
                    "hint": "Add the column or an alias.",
                    "details": {"column": "score", "row": None},
                    "severity": list(Severity)[i % 4],
                    "category": "data",
                    "status": status,
                    "assignee_id": users[Role.MODERATOR].id if i == 3 else None,
                    "fingerprint": f"fp{i}",
                    "occurrences": i,
                    "created_at": NOW - timedelta(hours=3 * i),
                    "last_seen_at": NOW - timedelta(hours=i),
                    "updated_at": NOW - timedelta(hours=i),
                    "acknowledged_at": NOW - timedelta(hours=3 * i - 1) if i >= 3 else None,
                    "resolved_at": NOW - timedelta(hours=1)
                    if status is IncidentStatus.RESOLVED
                    else None,
                    "root_cause": "export template changed" if i == 4 else "",
                    "corrective_action": "template fixed" if i == 4 else "",
                }
            )
        await session.execute(insert(Incident), incidents)
        await session.execute(
            insert(IncidentEvent),
            [
                {
                    "incident_id": i,
                    "kind": "opened",
                    "detail": "column 'score' is missing",
                    "created_at": NOW - timedelta(hours=3 * i),
                }
                for i in range(1, 6)
            ],
        )
        await session.execute(
            insert(Ticket),
            [
                {
                    "incident_id": i,
                    "title": f"Follow up incident {i}",
                    "created_at": NOW - timedelta(hours=3 * i),
                }
                for i in range(1, 6)
            ],
        )
        await session.execute(delete(WorkerHeartbeat))
        await session.execute(
            insert(WorkerHeartbeat),
            [
                {
                    "name": "worker-a",
                    "host": "lab1",
                    "pid": 101,
                    "embedded": False,
                    "started_at": NOW - timedelta(hours=5),
                    "heartbeat_at": NOW - timedelta(seconds=5),
                    "jobs_running": 1,
                },
                {
                    "name": "worker-b",
                    "host": "lab2",
                    "pid": 202,
                    "embedded": False,
                    "started_at": NOW - timedelta(hours=5),
                    "heartbeat_at": NOW - timedelta(hours=2),
                    "jobs_running": 0,
                },
            ],
        )
        if db.is_sqlite is False:  # keep PostgreSQL sequences ahead of the explicit ids
            from sqlalchemy import text

            for table in ("uploads", "job_runs", "incidents"):
                await session.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT MAX(id) FROM {table}))"
                    )
                )
