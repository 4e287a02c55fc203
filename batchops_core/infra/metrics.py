"""Prometheus metrics of a deployment, read from the database (the record) and Redis.

Gauges (uploads by status, runs by kind and status, open incidents, queue depth, live workers)
are set by `record()` from `services.status.metric_figures` on the daemon's loop, not at scrape
time: the exposition server
runs in a thread and must not touch the async engine. Histograms (stage durations, schedule lag)
observe each JobRunStep / scheduled JobRun once, by remembering the highest id seen. Every daemon
refreshes the same deployment-wide figures, so aggregate them with `max`, not `sum`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Gauge, Histogram, start_http_server

from batchops_core.enums import RunKind, RunStatus, UploadStatus

if TYPE_CHECKING:
    from batchops_core.services.status import MetricFigures

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
        self.after_step: int | None = None
        self.after_run: int | None = None
        """Highest step / run already observed; None until the first reading primes them."""
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

    def record(self, figures: MetricFigures, queue_depth: int | None) -> None:
        """Set the gauges and observe new stage durations and schedule lags."""
        uploads, runs = figures.uploads, figures.runs
        open_incidents, alive = figures.open_incidents, figures.workers_alive
        steps, lags = figures.steps, figures.lags
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
        self.after_step, self.after_run = figures.last_step_id, figures.last_run_id
        for _, stage, duration_ms in steps:
            self.stage_seconds.labels(stage=str(stage)).observe(float(duration_ms) / 1000)
        for _, lateness in lags:
            self.schedule_lag.observe(float(lateness))
