"""`batchops status [--json]`: what the deployment is doing right now, for people and scripts.

Queued, processing and recent uploads; running and recent runs; worker health from the
per-worker heartbeats; the next schedule firings; the arq queue depth when Redis is configured.
Exit status 0 when at least one worker (daemon or embedded) is alive or nothing waits, 1 when
uploads wait and no worker is alive (so a monitoring script can alert), 2 usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core.enums import RunStatus, UploadStatus
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.models import Job, JobRun, Upload
from batchops_core.worker.heartbeat import WorkerState, list_workers
from batchops_tui.cli.common import EXIT_FAILED, EXIT_OK, Cli, table

RECENT = 10


@dataclass(frozen=True)
class UploadLine:
    id: int
    filename: str
    status: str
    stage: str | None
    updated_at: datetime


@dataclass(frozen=True)
class RunLine:
    id: int
    kind: str
    task: str
    status: str
    worker: str | None
    upload_id: int | None
    started_at: datetime | None
    finished_at: datetime | None
    error_code: str | None


@dataclass(frozen=True)
class FiringLine:
    job_id: int
    name: str
    task: str
    next_run_at: datetime


@dataclass(frozen=True)
class SystemStatus:
    at: datetime
    uploads_by_status: dict[str, int]
    queued: list[UploadLine]
    processing: list[UploadLine]
    recent_uploads: list[UploadLine]
    running: list[RunLine]
    recent_runs: list[RunLine]
    workers: list[WorkerState]
    next_firings: list[FiringLine]
    queue_depth: int | None

    @property
    def workers_alive(self) -> int:
        return sum(w.alive for w in self.workers)


def _upload_line(u: Upload) -> UploadLine:
    return UploadLine(
        u.id,
        u.filename,
        u.status.value,
        u.current_stage.value if u.current_stage else None,
        u.updated_at,
    )


def _run_line(r: JobRun) -> RunLine:
    return RunLine(
        r.id,
        r.kind.value,
        r.task,
        r.status.value,
        r.worker,
        r.upload_id,
        r.started_at,
        r.finished_at,
        r.error_code,
    )


async def gather_status(session: AsyncSession, settings: Settings) -> SystemStatus:
    """Read everything `batchops status` shows, as plain data."""
    now = utcnow()
    counts = dict(
        (
            await session.execute(
                select(Upload.status, func.count(Upload.id)).group_by(Upload.status)
            )
        ).all()
    )

    async def uploads(*where: Any, newest: bool = False) -> list[UploadLine]:
        order = Upload.updated_at.desc() if newest else Upload.id
        rows = await session.scalars(select(Upload).where(*where).order_by(order).limit(RECENT))
        return [_upload_line(u) for u in rows]

    async def runs(*where: Any) -> list[RunLine]:
        rows = await session.scalars(
            select(JobRun).where(*where).order_by(JobRun.id.desc()).limit(RECENT)
        )
        return [_run_line(r) for r in rows]

    firings = await session.execute(
        select(Job.id, Job.name, Job.task, Job.next_run_at)
        .where(Job.enabled.is_(True), Job.next_run_at.is_not(None))
        .order_by(Job.next_run_at)
        .limit(5)
    )
    return SystemStatus(
        at=now,
        uploads_by_status={s.value: int(counts.get(s, 0)) for s in UploadStatus},
        queued=await uploads(Upload.status == UploadStatus.QUEUED),
        processing=await uploads(Upload.status == UploadStatus.PROCESSING),
        recent_uploads=await uploads(
            Upload.status.notin_([UploadStatus.QUEUED, UploadStatus.PROCESSING]), newest=True
        ),
        running=await runs(JobRun.status == RunStatus.RUNNING),
        recent_runs=await runs(JobRun.status != RunStatus.RUNNING),
        workers=await list_workers(session, settings, now),
        next_firings=[FiringLine(*row) for row in firings],
        queue_depth=None,
    )


async def _queue_depth(settings: Settings) -> int | None:
    if not settings.uses_redis:
        return None
    from redis.asyncio import Redis

    from batchops_core.worker.arq_settings import queue_name

    client = Redis.from_url(
        settings.redis.url, socket_connect_timeout=settings.redis.connect_timeout
    )
    try:
        return int(await client.zcard(queue_name(settings)))
    except Exception:
        return None
    finally:
        await client.aclose()


def _ago(now: datetime, when: datetime | None) -> str:
    if when is None:
        return "-"
    seconds = (now - when).total_seconds()
    if seconds < 0:
        seconds = -seconds
        return f"in {_span(seconds)}"
    return f"{_span(seconds)} ago"


def _span(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.0f}d"


def _render(cli: Cli, st: SystemStatus) -> None:
    counts = "  ".join(f"{k} {v}" for k, v in st.uploads_by_status.items())
    depth = "" if st.queue_depth is None else f"   arq queue: {st.queue_depth}"
    cli.print(f"Uploads: {counts}{depth}")
    for title, lines in (("Processing", st.processing), ("Queued", st.queued)):
        if lines:
            cli.print(f"\n{title}:")
            cli.print(
                table(
                    [
                        [str(u.id), u.filename, u.stage or "-", _ago(st.at, u.updated_at)]
                        for u in lines
                    ],
                    ["ID", "FILE", "STAGE", "UPDATED"],
                )
            )
    if st.recent_uploads:
        cli.print("\nRecent uploads:")
        cli.print(
            table(
                [
                    [str(u.id), u.filename, u.status, _ago(st.at, u.updated_at)]
                    for u in st.recent_uploads
                ],
                ["ID", "FILE", "STATUS", "UPDATED"],
            )
        )
    for title, lines in (("Running", st.running), ("Recent runs", st.recent_runs)):
        if lines:
            cli.print(f"\n{title}:")
            cli.print(
                table(
                    [
                        [
                            str(r.id),
                            r.task,
                            r.status,
                            r.error_code or "",
                            r.worker or "-",
                            _ago(st.at, r.finished_at or r.started_at),
                        ]
                        for r in lines
                    ],
                    ["RUN", "TASK", "STATUS", "ERROR", "WORKER", "WHEN"],
                )
            )
    cli.print("\nWorkers:" if st.workers else "\nWorkers: none has reported yet")
    if st.workers:
        cli.print(
            table(
                [
                    [
                        w.name,
                        "alive" if w.alive else "SILENT",
                        "embedded" if w.embedded else "daemon",
                        str(w.jobs_running),
                        _ago(st.at, w.heartbeat_at),
                    ]
                    for w in st.workers
                ],
                ["WORKER", "HEALTH", "KIND", "JOBS", "LAST BEAT"],
            )
        )
    if st.next_firings:
        cli.print("\nNext schedule firings:")
        cli.print(
            table(
                [
                    [
                        str(f.job_id),
                        f.name,
                        f.task,
                        f"{f.next_run_at:%Y-%m-%d %H:%M} UTC",
                        _ago(st.at, f.next_run_at),
                    ]
                    for f in st.next_firings
                ],
                ["ID", "SCHEDULE", "TASK", "NEXT", "IN"],
            )
        )


async def handle_status(args: argparse.Namespace, cli: Cli) -> int:
    db = await cli.database()
    async with db.unit() as session:
        st = await gather_status(session, cli.settings)
    st = dataclasses.replace(st, queue_depth=await _queue_depth(cli.settings))
    if args.json:
        payload = dataclasses.asdict(st)
        payload["workers_alive"] = st.workers_alive
        cli.print_json(payload)
    else:
        _render(cli, st)
    waiting = st.uploads_by_status.get(UploadStatus.QUEUED.value, 0)
    if waiting and not st.workers_alive:
        if not args.json:
            cli.error(f"{waiting} upload(s) wait and no worker is alive: start batchops-daemon.")
        return EXIT_FAILED
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add `batchops status`."""
    parser = sub.add_parser(
        "status", help="queued, processing and recent work, worker health, next schedules"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(handler=handle_status)
