"""Prometheus exposition on a loopback port, with figures read from the database."""

from __future__ import annotations

import asyncio
import urllib.request
from datetime import timedelta

from batchops_core.enums import RunKind, RunStatus, Stage, StepStatus, UploadStatus
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.infra.metrics import Metrics
from batchops_core.models import JobRun, JobRunStep, Upload
from batchops_core.services.status import metric_figures


async def _refresh(metrics: Metrics, db: Database, settings: Settings) -> None:
    """What the daemon's metrics loop does: read the figures, then set the gauges."""
    async with db.unit() as session:
        figures = await metric_figures(
            session, settings, after_step=metrics.after_step, after_run=metrics.after_run
        )
    metrics.record(figures, queue_depth=7)


async def test_metrics_endpoint_reports_database_figures(
    db: Database, db_settings: Settings
) -> None:
    metrics = Metrics()
    await _refresh(metrics, db, db_settings)  # primes: history is not observed
    async with db.unit() as session:
        upload = Upload(filename="a.csv", sha256="c" * 64, status=UploadStatus.FAILED)
        session.add(upload)
        await session.flush()
        run = JobRun(
            kind=RunKind.PIPELINE,
            task="process_upload",
            upload_id=upload.id,
            status=RunStatus.FAILED,
        )
        late = JobRun(
            kind=RunKind.AUTOMATION,
            task="noop",
            status=RunStatus.SUCCEEDED,
            scheduled_for=utcnow() - timedelta(seconds=3),
            lateness_seconds=3.0,
        )
        session.add_all([run, late])
        await session.flush()
        session.add(
            JobRunStep(
                run_id=run.id,
                stage=Stage.VALIDATE,
                position=2,
                status=StepStatus.SUCCEEDED,
                duration_ms=120.0,
            )
        )
    await _refresh(metrics, db, db_settings)
    port = metrics.serve("127.0.0.1", 0)
    try:
        body = await asyncio.to_thread(
            lambda: (
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
                .read()
                .decode()
            )
        )
    finally:
        metrics.close()
    assert 'batchops_uploads{status="failed"} 1.0' in body
    assert 'batchops_runs{kind="pipeline",status="failed"} 1.0' in body
    assert "batchops_queue_depth 7.0" in body
    assert 'batchops_stage_duration_seconds_count{stage="validate"} 1.0' in body
    assert 'batchops_stage_duration_seconds_bucket{le="0.25",stage="validate"} 1.0' in body
    assert "batchops_schedule_lag_seconds_count 1.0" in body
    assert "batchops_open_incidents 0.0" in body
