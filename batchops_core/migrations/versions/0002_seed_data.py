"""Seed data: the five demo departments and their records, starter known errors, default schedules.

A data migration, so every database (embedded or campus) starts with the same reference data.
The values are frozen here on purpose: later code changes must not rewrite history.

Revision ID: 0002
Revises: 0001
"""

import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from alembic import op
from croniter import croniter

from batchops_core.infra.db_types import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEPARTMENTS = {
    "Admissions": "New applications and entrance test scores.",
    "Attendance": "Daily attendance per class.",
    "Fees": "Fee invoices and payments per term.",
    "Library": "Loans and returns at the school library.",
    "Exams": "Exam scores per subject.",
}
RECORDS_PER_DEPARTMENT = 40
CLASSES = ["9A", "9B", "10A", "10B", "11A"]
SUBJECTS = ["Mathematics", "English", "Physics", "Chemistry", "History"]

KNOWN_ERRORS = [
    (
        "Wrong CSV delimiter",
        r"^CSV_(DELIMITER|SINGLE_COLUMN)",
        "standardize",
        "medium",
        "format",
        "The file was read with the wrong delimiter, so every row landed in one column.",
        "Export again with commas, or let BatchOps re-read it with the delimiter it detects.",
        "reread_delimiter",
        {"candidates": [";", "\t", "|", ","]},
    ),
    (
        "Unreadable text encoding",
        r"^CSV_ENCODING",
        "standardize",
        "medium",
        "format",
        "The file is not in UTF-8 and its encoding was guessed wrong.",
        "Save the file as UTF-8 CSV, or let BatchOps re-read it as cp1252.",
        "reread_encoding",
        {"encodings": ["cp1252", "latin-1", "utf-16"]},
    ),
    (
        "Student identifier under another name",
        r"^MISSING_COLUMN: .*student_id",
        "validate",
        "medium",
        "schema",
        "The identifier column is named differently in this department's export.",
        "Rename the column to 'Student ID', or add an alias under [pipeline.column_aliases].",
        "apply_alias",
        {
            "aliases": {
                "roll_no": "student_id",
                "roll_number": "student_id",
                "adm_no": "student_id",
                "admission_no": "student_id",
                "student_number": "student_id",
                "learner_id": "student_id",
            }
        },
    ),
    (
        "Database busy",
        r"(?i)(database is locked|connection (refused|reset|lost)|could not connect|lock timeout)",
        None,
        "high",
        "infrastructure",
        "The database or Redis was briefly unavailable.",
        "Nothing to change in the file; BatchOps retries later.",
        "retry_later",
        {"delay_seconds": 60},
    ),
    (
        "PDF without a table",
        r"^PDF_NO_TABLE",
        "standardize",
        "medium",
        "format",
        "The PDF holds no text table BatchOps can read (a scan, or prose only).",
        "Ask the department for the CSV or XLSX export of the same report.",
        "none",
        {},
    ),
    (
        "Encrypted document",
        r"^(PDF|XLSX)_ENCRYPTED",
        "standardize",
        "high",
        "format",
        "The file is password-protected.",
        "Ask the department to remove the password and resend it.",
        "none",
        {},
    ),
    (
        "File too large",
        r"^FILE_TOO_LARGE",
        "standardize",
        "low",
        "format",
        "The file is over the configured size limit.",
        "Split the file by term or class, or raise [pipeline].max_upload_mb.",
        "none",
        {},
    ),
    (
        "Duplicate student rows",
        r"^DUPLICATE_KEYS",
        "validate",
        "medium",
        "data",
        "The same identifier appears on several rows.",
        "Remove the repeated rows in the source system and export again.",
        "none",
        {},
    ),
    (
        "Too many invalid rows",
        r"^VALIDATION_THRESHOLD",
        "validate",
        "high",
        "data",
        "More rows are invalid than the configured threshold allows.",
        "Open the fix-list, correct the rows at the source and upload again.",
        "none",
        {},
    ),
]

SCHEDULES = [
    *[
        (
            f"Ingest {name}",
            "ingest_department",
            {"department": name},
            f"{5 * i} 6 * * 1-5",
            f"Pull new {name} records every weekday morning.",
        )
        for i, name in enumerate(DEPARTMENTS)
    ],
    (
        "Ingest all departments",
        "ingest_all_departments",
        {},
        "30 18 * * *",
        "Evening catch-up of every department feed.",
    ),
    (
        "Daily status digest",
        "send_system_status_digest",
        {},
        "0 7 * * *",
        "Email admins yesterday's runs, failures, open incidents and MTTR.",
    ),
    (
        "Attendance reminders",
        "send_attendance_reminders",
        {},
        "0 9 * * 1",
        "Remind departments that have not submitted this week.",
    ),
    (
        "Nightly backup",
        "run_daily_backup",
        {},
        "0 2 * * *",
        "Consistent copy of the database plus a manifest of stored files.",
    ),
    (
        "Weekly purge",
        "purge_old_records",
        {},
        "0 3 * * 0",
        "Delete uploads, exports, runs and archived incidents past retention.",
    ),
]


def _payload(name: str, rng: random.Random, i: int) -> dict[str, object]:
    day = date(2026, 9, 1) + timedelta(days=i)
    if name == "Admissions":
        return {
            "applicant": f"Applicant {i:03d}",
            "program": rng.choice(["Science", "Arts", "Commerce"]),
            "applied_on": day.isoformat(),
            "entrance_score": rng.randint(40, 100),
        }
    if name == "Attendance":
        return {
            "class": rng.choice(CLASSES),
            "date": day.isoformat(),
            "present": rng.randint(15, 22),
            "absent": rng.randint(0, 5),
        }
    if name == "Fees":
        due = rng.choice([1200, 1500, 1800])
        return {"term": "2026-T1", "amount_due": due, "amount_paid": rng.choice([0, due // 2, due])}
    if name == "Library":
        return {
            "book_id": f"B{rng.randint(1, 9999):05d}",
            "borrowed_on": day.isoformat(),
            "returned": rng.random() < 0.7,
        }
    return {
        "class": rng.choice(CLASSES),
        "subject": rng.choice(SUBJECTS),
        "score": rng.randint(20, 100),
        "max_score": 100,
    }


def upgrade() -> None:
    now = datetime.now(UTC)
    departments = sa.table(
        "departments",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("description", sa.Text),
        sa.column("contact_email", sa.String),
        sa.column("active", sa.Boolean),
        sa.column("last_ingested_record_id", sa.BigInteger),
        sa.column("created_at", UTCDateTime()),
    )
    op.bulk_insert(
        departments,
        [
            {
                "id": i,
                "name": name,
                "description": text,
                "contact_email": f"{name.lower()}@school.example",
                "active": True,
                "last_ingested_record_id": 0,
                "created_at": now,
            }
            for i, (name, text) in enumerate(DEPARTMENTS.items(), start=1)
        ],
    )
    records = sa.table(
        "department_records",
        sa.column("department_id", sa.Integer),
        sa.column("student_id", sa.String),
        sa.column("payload", sa.JSON),
        sa.column("created_at", UTCDateTime()),
    )
    rng = random.Random(2026)
    op.bulk_insert(
        records,
        [
            {
                "department_id": d,
                "student_id": f"S{1000 + i:05d}",
                "payload": _payload(name, rng, i),
                "created_at": now,
            }
            for d, name in enumerate(DEPARTMENTS, start=1)
            for i in range(RECORDS_PER_DEPARTMENT)
        ],
    )
    known = sa.table(
        "known_errors",
        sa.column("name", sa.String),
        sa.column("pattern", sa.Text),
        sa.column("stage", sa.String),
        sa.column("severity", sa.String),
        sa.column("category", sa.String),
        sa.column("root_cause", sa.Text),
        sa.column("fix", sa.Text),
        sa.column("remediation", sa.String),
        sa.column("remediation_args", sa.JSON),
        sa.column("active", sa.Boolean),
        sa.column("created_at", UTCDateTime()),
    )
    keys = (
        "name",
        "pattern",
        "stage",
        "severity",
        "category",
        "root_cause",
        "fix",
        "remediation",
        "remediation_args",
    )
    op.bulk_insert(
        known,
        [
            {**dict(zip(keys, row, strict=True)), "active": True, "created_at": now}
            for row in KNOWN_ERRORS
        ],
    )
    jobs = sa.table(
        "jobs",
        sa.column("name", sa.String),
        sa.column("description", sa.Text),
        sa.column("task", sa.String),
        sa.column("arguments", sa.JSON),
        sa.column("cron", sa.String),
        sa.column("timezone", sa.String),
        sa.column("enabled", sa.Boolean),
        sa.column("next_run_at", UTCDateTime()),
        sa.column("created_at", UTCDateTime()),
        sa.column("updated_at", UTCDateTime()),
    )
    op.bulk_insert(
        jobs,
        [
            {
                "name": name,
                "description": text,
                "task": task,
                "arguments": args,
                "cron": cron,
                "timezone": "UTC",
                "enabled": True,
                "next_run_at": croniter(cron, now).get_next(datetime),
                "created_at": now,
                "updated_at": now,
            }
            for name, task, args, cron, text in SCHEDULES
        ],
    )


def downgrade() -> None:
    op.execute("DELETE FROM jobs")
    op.execute("DELETE FROM known_errors")
    op.execute("DELETE FROM department_records")
    op.execute("DELETE FROM departments")
