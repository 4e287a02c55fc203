"""The sweeper: the database, not Redis, decides what happened to work whose worker vanished.

arq delivers at least once, but a job whose worker was SIGKILLed is re-run only after its
in-progress key expires (job_timeout + 40 s), never with `max_tries` exhausted, and not at all if
Redis lost the queue. So every daemon sweeps every second. Whether a run's worker lives comes from
signals that die with the process (`liveness.py`: a Redis key with a 4 s TTL, the PID on the same
host): a dead worker's `running` run is marked failed with `WORKER_LOST` at once; its upload goes
back to `queued` and is enqueued again while fewer than `max_tries` runs were lost, else it fails
with an incident. A live worker's runs are never lost (a database outage stops heartbeats, not
workers); one it no longer executes is handed back. Only where liveness cannot tell does a
heartbeat older than `stale_after_seconds` count. Jobs dead workers held in arq and queued uploads
no job covers are rescued by `rescue.py`. Each move is a conditional UPDATE, so two sweepers (or a
sweeper and a slow worker) never both win. Every age is measured on the database's clock (`db_now`,
read once per pass), the clock heartbeats are written on: a sweeper whose host runs ahead must not
find another host's live run stale.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Update, and_, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core.enums import RunKind, RunStatus, UploadStatus
from batchops_core.incidents import FailureInfo, record_stage_failure, record_task_failure
from batchops_core.infra import events
from batchops_core.infra.clock import db_now
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import JobRun, Upload
from batchops_core.worker.arq_settings import queue_name
from batchops_core.worker.liveness import (
    LIVENESS_EVERY,
    LIVENESS_TTL,
    Life,
    LivenessJudge,
    Verdict,
)
from batchops_core.worker.rescue import RescueState, requeue_uncovered, rescue_orphaned_jobs

if TYPE_CHECKING:
    from batchops_core.worker.dispatcher import Dispatcher

log = logging.getLogger(__name__)

WORKER_LOST = "WORKER_LOST"
HANDED_BACK = "HANDED_BACK"


def _running_runs(upload_id: int, worker: str | None):  # type: ignore[no-untyped-def]
    conditions = [JobRun.upload_id == upload_id, JobRun.status == RunStatus.RUNNING]
    if worker is not None:
        conditions.append(JobRun.worker == worker)
    return and_(*conditions)


def _requeue_idle_upload(upload_id: int) -> Update:
    """Put a `processing` upload back to `queued`, unless a run of it is still running."""
    return (
        update(Upload)
        .where(
            Upload.id == upload_id,
            Upload.status == UploadStatus.PROCESSING,
            ~exists().where(_running_runs(upload_id, None)),
        )
        .values(status=UploadStatus.QUEUED)
    )


async def _publish_upload(settings: Settings, upload_id: int, status: UploadStatus) -> None:
    await events.publish(
        settings, events.Event(type="upload.updated", id=upload_id, status=status.value)
    )


async def hand_back_upload(
    db: Database, settings: Settings, upload_id: int, *, worker: str
) -> bool:
    """Cancel this worker's running run of the upload and put the upload back in `queued`.

    Used when a job is cancelled (shutdown, lost slot) or hit a transient failure, so that the
    re-delivered job can claim the upload again. Returns whether the upload was handed back.
    """
    async with db.unit() as session:
        now = await db_now(session)
        await session.execute(
            update(JobRun)
            .where(_running_runs(upload_id, worker))
            .values(
                status=RunStatus.CANCELLED,
                finished_at=now,
                error_code=HANDED_BACK,
                error_message="the worker stopped this run; the upload was queued again.",
            )
        )
        moved = await session.execute(_requeue_idle_upload(upload_id))
    handed = bool(moved.rowcount)  # type: ignore[attr-defined]
    if handed:
        await _publish_upload(settings, upload_id, UploadStatus.QUEUED)
    return handed


async def fail_upload(
    db: Database,
    settings: Settings,
    upload_id: int,
    *,
    worker: str | None,
    code: str,
    message: str,
) -> int | None:
    """Fail the upload (and this worker's running run of it) with an incident; return its id.

    Only an upload still `queued` or `processing` moves, so a run that finished meanwhile is
    left alone and no incident is recorded for it.
    """
    async with db.unit() as session:
        now = await db_now(session)
        run_id = await session.scalar(
            select(JobRun.id)
            .where(_running_runs(upload_id, worker))
            .order_by(JobRun.id.desc())
            .limit(1)
        )
        await session.execute(
            update(JobRun)
            .where(_running_runs(upload_id, worker))
            .values(
                status=RunStatus.FAILED, finished_at=now, error_code=code, error_message=message
            )
        )
        incident_id = await _fail_upload_row(
            session, settings, upload_id, code=code, message=message, run_id=run_id
        )
    if incident_id is not None:
        await _publish_upload(settings, upload_id, UploadStatus.FAILED)
        await events.publish(
            settings, events.Event(type="incident.updated", id=incident_id, status="open")
        )
    return incident_id


async def _fail_upload_row(
    session: AsyncSession,
    settings: Settings,
    upload_id: int,
    *,
    code: str,
    message: str,
    run_id: int | None,
) -> int | None:
    upload = await session.get(Upload, upload_id)
    if upload is None:
        return None
    moved = await session.execute(
        update(Upload)
        .where(
            Upload.id == upload_id,
            Upload.status.in_([UploadStatus.QUEUED, UploadStatus.PROCESSING]),
        )
        .values(status=UploadStatus.FAILED, error_code=code, error_message=message)
    )
    if not moved.rowcount:  # type: ignore[attr-defined]
        return None
    failure = FailureInfo(code=code, message=message, stage=upload.current_stage)
    return await record_stage_failure(
        session,
        source=upload.source,
        failure=failure,
        upload_id=upload_id,
        run_id=run_id,
        settings=settings,
    )


@dataclass
class SweepReport:
    """What one sweep changed; the daemon logs it and the tests assert on it."""

    lost_runs: list[int] = field(default_factory=list)
    handed_back_runs: list[int] = field(default_factory=list)
    requeued_uploads: list[int] = field(default_factory=list)
    failed_uploads: list[int] = field(default_factory=list)
    failed_automation_runs: list[int] = field(default_factory=list)
    incidents: list[int] = field(default_factory=list)
    rescued_jobs: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(
            self.lost_runs
            or self.handed_back_runs
            or self.requeued_uploads
            or self.failed_uploads
            or self.rescued_jobs
        )


@dataclass
class SweepState:
    """What a daemon's sweeper keeps between passes (liveness, suspicions, its DB continuity).

    `time_rule_from` (monotonic) holds back the heartbeat-age rule until the database has been
    reachable for `stale_after_seconds`: after an outage every heartbeat looks old, and the
    workers that wrote them are alive.
    """

    judge: LivenessJudge | None = None
    rescue: RescueState = field(default_factory=RescueState)
    orphans: dict[int, float] = field(default_factory=dict)
    time_rule_from: float = 0.0

    def database_back(self, settings: Settings) -> None:
        self.time_rule_from = time.monotonic() + settings.worker.stale_after_seconds


ORPHAN_GRACE = LIVENESS_TTL + LIVENESS_EVERY + 0.5
"""Seconds a live worker must go on not listing a run before the run is handed back: longer than
a liveness key outlives its worker, so a run a worker took just before it was SIGKILLed is
reported lost (WORKER_LOST), not handed back by a worker that only looks alive."""


@dataclass(frozen=True)
class _Move:
    run_id: int
    kind: str
    upload_id: int | None
    task: str
    worker: str | None
    code: str
    message: str
    by_time: bool


def _decide(
    rows: list[Any], verdicts: dict[str, Verdict], state: SweepState | None, settings: Settings
) -> list[_Move]:
    """Which running runs are lost (dead worker, or silent where liveness cannot tell) and which
    a live worker no longer executes (handed back, never counted as lost)."""
    now = time.monotonic()
    time_rule = state is None or now >= state.time_rule_from
    moves: list[_Move] = []
    seen: set[int] = set()
    for run_id, kind, upload_id, task, worker, stale in rows:
        verdict = verdicts.get(worker or "", Verdict(Life.UNKNOWN))
        base = (run_id, kind, upload_id, task, worker)
        if verdict.life is Life.DEAD:
            message = f"worker {worker or '?'} is gone (its process ended) while running this."
            moves.append(_Move(*base, WORKER_LOST, message, False))
        elif verdict.life is Life.ALIVE:
            if verdict.holds(upload_id=upload_id, run_id=run_id) is not False or state is None:
                continue
            seen.add(run_id)
            first = state.orphans.setdefault(run_id, now)
            if now - first >= ORPHAN_GRACE:
                message = (
                    f"worker {worker} is alive but no longer runs this (it gave it up, e.g. "
                    "during a database outage); the upload was queued again."
                )
                moves.append(_Move(*base, HANDED_BACK, message, False))
        elif stale and time_rule:
            message = (
                f"worker {worker or '?'} stopped heart-beating for over "
                f"{settings.worker.stale_after_seconds} s while running this."
            )
            moves.append(_Move(*base, WORKER_LOST, message, True))
    if state is not None:
        state.orphans = {r: t for r, t in state.orphans.items() if r in seen}
    return moves


async def sweep_once(
    db: Database,
    settings: Settings,
    dispatcher: Dispatcher | None = None,
    *,
    now: datetime | None = None,
    state: SweepState | None = None,
) -> SweepReport:
    """Recover runs whose worker died or gave them up, and work that no queue will run.

    With a `state` (a daemon's sweeper), liveness decides: a dead worker's runs are lost at once;
    a live worker's runs are never lost, only handed back when it stopped executing them. Where
    liveness cannot tell (and always without a state), a heartbeat older than
    `stale_after_seconds` counts as lost. Ages are on the database's clock (or `now`, a reading
    of it).
    """
    report = SweepReport()
    to_enqueue: list[tuple[int, str]] = []
    last_sign = func.coalesce(JobRun.heartbeat_at, JobRun.started_at, JobRun.created_at)
    async with db.unit() as session:
        now = now or await db_now(session)
        cutoff = now - timedelta(seconds=settings.worker.stale_after_seconds)
        rows = (
            await session.execute(
                select(
                    JobRun.id,
                    JobRun.kind,
                    JobRun.upload_id,
                    JobRun.task,
                    JobRun.worker,
                    last_sign < cutoff,
                )
                .where(JobRun.status == RunStatus.RUNNING)
                .order_by(JobRun.id)
                .limit(1000)
            )
        ).all()
    judge = state.judge if state is not None else None
    verdicts: dict[str, Verdict] = {}
    if judge is not None:  # asked every pass: Redis must be known up for a while to be trusted
        names = [r[4] for r in rows if r[4]]
        verdicts = await judge.judge(names) if names else {}
        if not names:
            await judge.check_redis()
    for move in _decide(list(rows), verdicts, state, settings):
        await _apply(db, settings, move, cutoff, now, report, to_enqueue)
    queue_depth = await _queue_depth(dispatcher, settings)
    await _find_stuck_uploads(db, settings, cutoff, report, to_enqueue, queue_depth)
    await _rescue_arq(db, settings, dispatcher, state, report, to_enqueue)
    for upload_id, job_id in to_enqueue:
        if dispatcher is not None:
            await dispatcher.process_upload(upload_id, job_id=job_id)
    for run_id in report.lost_runs:
        await events.publish(
            settings, events.Event(type="run.updated", id=run_id, status=RunStatus.FAILED.value)
        )
    for run_id in report.handed_back_runs:
        await events.publish(
            settings, events.Event(type="run.updated", id=run_id, status=RunStatus.CANCELLED.value)
        )
    for upload_id in report.requeued_uploads:
        await _publish_upload(settings, upload_id, UploadStatus.QUEUED)
    for upload_id in report.failed_uploads:
        await _publish_upload(settings, upload_id, UploadStatus.FAILED)
    if report.changed:
        log.warning(
            "sweeper: %d lost runs, %d handed back, re-queued uploads %s, failed uploads %s, "
            "rescued jobs %s",
            len(report.lost_runs),
            len(report.handed_back_runs),
            report.requeued_uploads,
            report.failed_uploads,
            report.rescued_jobs,
        )
    return report


async def _apply(
    db: Database,
    settings: Settings,
    move: _Move,
    cutoff: datetime,
    now: datetime,
    report: SweepReport,
    to_enqueue: list[tuple[int, str]],
) -> None:
    """Move one run by a conditional UPDATE (two sweepers never both win), then its upload."""
    last_sign = func.coalesce(JobRun.heartbeat_at, JobRun.started_at, JobRun.created_at)
    where = [JobRun.id == move.run_id, JobRun.status == RunStatus.RUNNING]
    if move.by_time:
        where.append(last_sign < cutoff)
    lost = move.code == WORKER_LOST
    status = RunStatus.FAILED if lost or move.kind != RunKind.PIPELINE else RunStatus.CANCELLED
    async with db.unit() as session:
        won = await session.execute(
            update(JobRun)
            .where(*where)
            .values(
                status=status, finished_at=now, error_code=move.code, error_message=move.message
            )
        )
        if not won.rowcount:  # type: ignore[attr-defined]
            return
        (report.lost_runs if lost else report.handed_back_runs).append(move.run_id)
        if move.kind == RunKind.PIPELINE and move.upload_id is not None:
            if lost:
                await _recover_upload(
                    session, settings, move.upload_id, move.run_id, move.message, report
                )
            else:
                moved = await session.execute(_requeue_idle_upload(move.upload_id))
                if moved.rowcount:  # type: ignore[attr-defined]
                    report.requeued_uploads.append(move.upload_id)
            if move.upload_id in report.requeued_uploads:
                to_enqueue.append((move.upload_id, f"{settings.redis.prefix}:sweep:{move.run_id}"))
        else:
            failure = FailureInfo(code=move.code, message=move.message)
            incident_id = await record_task_failure(
                session, task=move.task, failure=failure, run_id=move.run_id, settings=settings
            )
            report.failed_automation_runs.append(move.run_id)
            report.incidents.append(incident_id)


async def _rescue_arq(
    db: Database,
    settings: Settings,
    dispatcher: Dispatcher | None,
    state: SweepState | None,
    report: SweepReport,
    to_enqueue: list[tuple[int, str]],
) -> None:
    """Jobs dead workers held in arq, and queued uploads no job covers (see `rescue.py`)."""
    pool = dispatcher.pool if dispatcher is not None else None
    judge = state.judge if state is not None else None
    if pool is None or state is None or judge is None or not judge.redis_trusted:
        return
    try:
        skip = {u for u, _ in to_enqueue}
        report.rescued_jobs.extend(await rescue_orphaned_jobs(pool, settings, skip_uploads=skip))
        found = await requeue_uncovered(db, pool, settings, state.rescue)
    except Exception as exc:  # Redis went away mid-pass: the next pass tries again
        log.info("sweeper: arq rescue skipped: %s", exc)
        return
    known = {u for u, _ in to_enqueue}
    for upload_id, job_id in found:
        if upload_id not in known:
            to_enqueue.append((upload_id, job_id))
            report.rescued_jobs.append(job_id)


async def _queue_depth(dispatcher: Dispatcher | None, settings: Settings) -> int | None:
    """Jobs waiting in arq, or None without Redis (or when Redis does not answer)."""
    if dispatcher is None or dispatcher.pool is None:
        return None
    try:
        return int(await dispatcher.pool.zcard(queue_name(settings)))
    except Exception as exc:  # Redis down: enqueueing would fail as well
        log.warning("sweeper: cannot read the queue depth: %s", exc)
        return None


async def _recover_upload(
    session: AsyncSession,
    settings: Settings,
    upload_id: int,
    run_id: int,
    message: str,
    report: SweepReport,
) -> None:
    lost = await session.scalar(
        select(func.count(JobRun.id)).where(
            JobRun.upload_id == upload_id, JobRun.error_code == WORKER_LOST
        )
    )
    if (lost or 0) < settings.worker.max_tries:
        moved = await session.execute(_requeue_idle_upload(upload_id))
        if moved.rowcount:  # type: ignore[attr-defined]
            report.requeued_uploads.append(upload_id)
        return
    incident_id = await _fail_upload_row(
        session,
        settings,
        upload_id,
        code=WORKER_LOST,
        message=f"{message} Gave up after {lost} lost runs.",
        run_id=run_id,
    )
    if incident_id is not None:
        report.failed_uploads.append(upload_id)
        report.incidents.append(incident_id)


async def _find_stuck_uploads(
    db: Database,
    settings: Settings,
    cutoff: datetime,
    report: SweepReport,
    to_enqueue: list[tuple[int, str]],
    queue_depth: int | None,
) -> None:
    """Uploads `processing` with no running run, or `queued` for long: enqueue them again.

    A crash between claiming an upload and writing its run, or a Redis that lost its queue,
    leaves such uploads; re-enqueueing is safe because the runner claims by conditional UPDATE.
    Long-`queued` uploads are enqueued again only when the arq queue holds fewer jobs than there
    are such uploads (they cannot all be waiting in it), so a mere backlog is not doubled.
    `queue_depth` None (no Redis) leaves them to the in-process worker, which polls the table.
    """
    no_run = ~exists().where(JobRun.upload_id == Upload.id, JobRun.status == RunStatus.RUNNING)
    async with db.unit() as session:
        moved = (
            await session.scalars(
                update(Upload)
                .where(
                    Upload.status == UploadStatus.PROCESSING,
                    Upload.updated_at < cutoff,
                    no_run,
                )
                .values(status=UploadStatus.QUEUED)
                .returning(Upload.id)
            )
        ).all()
        waiting = (
            await session.execute(
                select(Upload.id, Upload.updated_at)
                .where(Upload.status == UploadStatus.QUEUED, Upload.updated_at < cutoff)
                .order_by(Upload.id)
                .limit(1000)
            )
        ).all()
    for upload_id in moved:
        report.requeued_uploads.append(upload_id)
        to_enqueue.append((upload_id, f"{settings.redis.prefix}:unstick:{upload_id}"))
    seen = {u for u, _ in to_enqueue}
    if queue_depth is None or queue_depth >= len(waiting):
        return
    for upload_id, updated_at in waiting:
        if upload_id in seen:
            continue
        stamp = int(updated_at.timestamp())
        to_enqueue.append((upload_id, f"{settings.redis.prefix}:requeue:{upload_id}:{stamp}"))
