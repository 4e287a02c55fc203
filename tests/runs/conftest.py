"""Helpers for run tests: bulk-insert runs (Core executemany) with steps for a few of them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert

from batchops_core.enums import RunKind, RunStatus
from batchops_core.infra.db import Database
from batchops_core.models import JobRun

STATUSES = [RunStatus.SUCCEEDED] * 7 + [RunStatus.FAILED, RunStatus.SKIPPED, RunStatus.RUNNING]


async def bulk_runs(
    db: Database,
    count: int,
    *,
    start: datetime,
    upload_id: int | None = None,
    job_id: int | None = None,
    department_ids: tuple[int, ...] = (1, 2, 3, 4, 5),
    batch: int = 20_000,
) -> None:
    """`count` runs, one a minute from `start`, statuses and kinds cycling deterministically."""
    rows: list[dict[str, Any]] = []
    for i in range(count):
        at = start + timedelta(minutes=i)
        pipeline = i % 3 != 0
        rows.append(
            {
                "kind": RunKind.PIPELINE if pipeline else RunKind.AUTOMATION,
                "task": "process_upload" if pipeline else "ingest_department",
                "upload_id": upload_id if pipeline else None,
                "job_id": None if pipeline else job_id,
                "department_id": department_ids[i % len(department_ids)],
                "status": STATUSES[i % len(STATUSES)],
                "attempt": 1,
                "worker": "bench@host:1",
                "created_at": at,
                "started_at": at,
                "finished_at": at + timedelta(seconds=2),
                "rows_in": 100,
                "rows_out": 99,
                "log": [],
            }
        )
    async with db.engine.begin() as conn:
        for i in range(0, len(rows), batch):
            await conn.execute(insert(JobRun.__table__), rows[i : i + batch])
