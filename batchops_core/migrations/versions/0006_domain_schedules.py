"""Seeded schedules of the Sources and Attendance tasks.

Revision ID: 0006
Revises: 0005

Every database starts with the recurring work the two domains need: syncing every source (which
includes the punches of a database source whose target is `punches`), settling source jobs,
alerting on and re-running missing days, processing attendance at night, the absentees mail on
working days and the monthly register. A schedule whose name an admin already used is left
alone. Values are frozen here: later code changes must not rewrite history.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from croniter import croniter

from batchops_core.infra.db_types import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEDULES = [
    ("Sync sources", "sync_sources", "*/10 * * * *", "Read what is new from every source."),
    ("Settle source jobs", "settle_source_jobs", "*/5 * * * *", "Complete finished source jobs."),
    ("Missing-data alerts", "check_missing_sources", "0 8 * * 1-5", "Alert on missing days."),
    ("Run missing days", "run_missing_sources", "30 2 * * *", "Queue every missing day again."),
    ("Process attendance", "attendance_process", "0 1 * * *", "Recompute up to yesterday."),
    ("Absentees mail", "attendance_absentees", "30 9 * * 1-5", "Mail departments' absentees."),
    ("Monthly register", "attendance_register", "0 6 1 * *", "Last month's register, CSV + PDF."),
]


def upgrade() -> None:
    now = datetime.now(UTC)
    bind = op.get_bind()
    taken = {name for (name,) in bind.execute(sa.text("SELECT name FROM jobs"))}
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
    rows = [
        {
            "name": name,
            "description": text,
            "task": task,
            "arguments": {},
            "cron": cron,
            "timezone": "UTC",
            "enabled": True,
            "next_run_at": croniter(cron, now).get_next(datetime),
            "created_at": now,
            "updated_at": now,
        }
        for name, task, cron, text in SCHEDULES
        if name not in taken
    ]
    if rows:
        op.bulk_insert(jobs, rows)


def downgrade() -> None:
    names = ", ".join(f"'{name}'" for name, *_ in SCHEDULES)
    op.execute(f"DELETE FROM jobs WHERE name IN ({names})")
