"""Prometheus metrics of a deployment, read from the database (the record) and Redis.

Gauges (uploads by status, runs by kind and status, open incidents, queue depth, live workers)
are recomputed by `refresh()` on the daemon's loop, not at scrape time: the exposition server
runs in a thread and must not touch the async engine. Histograms (stage durations, schedule lag)
observe each JobRunStep / scheduled JobRun once, by remembering the highest id seen. Every daemon
refreshes the same deployment-wide figures, so aggregate them with `max`, not `sum`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram, start_http_server
from sqlalchemy import func, select

from batchops_core.enums import IncidentStatus, RunKind, RunStatus, UploadStatus
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Incident, JobRun, JobRunStep, Upload, WorkerHeartbeat

STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)


class Metrics:
    """One registry per daemon (tests build several in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.uploads = Gauge("batchops_uploads", "Uploads by status.", ["status"], registry=r)
        self.runs = Gauge(
            "batchops_runs", "Runs by kind and status.", ["kind", "status"], registry=r
        )
        self.open_incidents = Gauge(
            "batchops_open_incidents", "Incidents open or in progress.", registry=r
        )
        self.queue_depth = Gauge(
            "batchops_queue_depth", "Jobs waiting in the arq queue.", registry=r
        )
        self.workers_alive = Gauge(
            "batchops_workers_alive", "Workers that beat within health_interval.", registry=r
        )
        self.stage_seconds = Histogram(
            "batchops_stage_duration_seconds",
            "Duration of pipeline stages.",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.schedule_lag = Histogram(
            "batchops_schedule_lag_seconds",
            "How late scheduled runs started after their firing time.",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self._last_step_id = 0
        self._last_run_id = 0
        self._primed = False
        self._server: Any = None

    def serve(self, host: str, port: int) -> int:
        """Expose /metrics on host:port (port 0 picks a free one); return the port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        return int(server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    async def refresh(self, db: Database, settings: Settings, queue_depth: int | None) -> None:
        """Recompute the gauges and observe new stage durations and schedule lags."""
        async with db.unit() as session:
            uploads = dict(
                (
                    await session.execute(
                        select(Upload.status, func.count(Upload.id)).group_by(Upload.status)
                    )
                ).all()
            )
            runs = (
                await session.execute(
                    select(JobRun.kind, JobRun.status, func.count(JobRun.id)).group_by(
                        JobRun.kind, JobRun.status
                    )
                )
            ).all()
            open_incidents = await session.scalar(
                select(func.count(Incident.id)).where(
                    Incident.status.in_([IncidentStatus.OPEN, IncidentStatus.IN_PROGRESS])
                )
            )
            cutoff = utcnow() - timedelta(seconds=settings.worker.health_interval)
            alive = await session.scalar(
                select(func.count())
                .select_from(WorkerHeartbeat)
                .where(WorkerHeartbeat.heartbeat_at >= cutoff)
            )
            if not self._primed:
                # Observe only what happens from now on: history is not this daemon's to count.
                self._last_step_id = await session.scalar(select(func.max(JobRunStep.id))) or 0
                self._last_run_id = await session.scalar(select(func.max(JobRun.id))) or 0
                self._primed = True
            steps = (
                await session.execute(
                    select(JobRunStep.id, JobRunStep.stage, JobRunStep.duration_ms)
                    .where(JobRunStep.id > self._last_step_id, JobRunStep.duration_ms.is_not(None))
                    .order_by(JobRunStep.id)
                    .limit(10_000)
                )
            ).all()
            lags = (
                await session.execute(
                    select(JobRun.id, JobRun.lateness_seconds)
                    .where(
                        JobRun.id > self._last_run_id,
                        JobRun.scheduled_for.is_not(None),
                        JobRun.lateness_seconds.is_not(None),
                    )
                    .order_by(JobRun.id)
                    .limit(10_000)
                )
            ).all()
        for status in UploadStatus:
            self.uploads.labels(status=status.value).set(int(uploads.get(status, 0)))
        seen = {(str(k), str(s)): n for k, s, n in runs}
        for kind in RunKind:
            for status in RunStatus:
                self.runs.labels(kind=kind.value, status=status.value).set(
                    int(seen.get((kind.value, status.value), 0))
                )
        self.open_incidents.set(int(open_incidents or 0))
        self.workers_alive.set(int(alive or 0))
        if queue_depth is not None:
            self.queue_depth.set(queue_depth)
        for step_id, stage, duration_ms in steps:
            self.stage_seconds.labels(stage=str(stage)).observe(float(duration_ms) / 1000)
            self._last_step_id = max(self._last_step_id, step_id)
        for run_id, lateness in lags:
            self.schedule_lag.observe(float(lateness))
            self._last_run_id = max(self._last_run_id, run_id)
