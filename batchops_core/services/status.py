"""The deployment's state for people and monitors: `batchops status`, `batchops-daemon --check`
and `--once`, `batchops doctor`, the Prometheus gauges and Home all read it here, so "uploads by
status" or "is a worker alive" has one answer.

On a campus several hosts share the database, so "alive" is judged on the database's clock
(heartbeats are written on it), this host's own clock is only *reported* when it drifts, and
`--check` asks about the daemons of this host by name, not whether any worker anywhere beats.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import func, select

from batchops_core.enums import IncidentStatus, RunStatus, UploadStatus
from batchops_core.infra.clock import SKEW_ADVICE, Skew, db_now, measure_skew
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database, UnitOfWork
from batchops_core.models import Incident, Job, JobRun, JobRunStep, Upload, WorkerHeartbeat
from batchops_core.permissions import Action, Actor, require
from batchops_core.services.uploads import UploadInfo
from batchops_core.storage import StorageError, open_store
from batchops_core.storage.local import LocalStore
from batchops_core.worker.arq_settings import queue_name
from batchops_core.worker.heartbeat import WorkerState, list_workers, redis_key, redis_pattern
from batchops_core.worker.outages import clock, database_outage_since, redis_outage

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
class HostClock:
    """This host's clock against the database's."""

    host: str
    skew: Skew
    limit: float

    @property
    def skewed(self) -> bool:
        return self.skew.exceeds(self.limit)

    def sentence(self) -> str:
        if self.skewed:
            return f"{self.skew.describe(self.host)} (more than {self.limit:g} s): {SKEW_ADVICE}"
        return f"{self.host} is within {abs(self.skew.seconds):.1f} s of the database's clock"


async def host_clock(session: UnitOfWork, settings: Settings) -> HostClock:
    """Measure this host's clock skew (one round trip)."""
    skew = await measure_skew(session)
    return HostClock(socket.gethostname(), skew, settings.worker.max_clock_skew_seconds)


@dataclass(frozen=True)
class HostDaemons:
    """The daemons alive on one host, and how long ago (database time) the last of them beat."""

    host: str
    workers: tuple[str, ...]
    last_beat_seconds: float


def daemons_by_host(workers: list[WorkerState], now: datetime) -> list[HostDaemons]:
    """Alive daemon workers (not the TUI's embedded ones) grouped by host, hosts sorted."""
    hosts: dict[str, list[WorkerState]] = {}
    for w in workers:
        if w.alive and not w.embedded:
            hosts.setdefault(w.host, []).append(w)
    return [
        HostDaemons(
            host,
            tuple(sorted(w.name for w in group)),
            max(0.0, (now - max(w.heartbeat_at for w in group)).total_seconds()),
        )
        for host, group in sorted(hosts.items())
    ]


async def alive_hosts(session: UnitOfWork, settings: Settings) -> list[HostDaemons]:
    """Which hosts run a live daemon, judged on the database's clock."""
    now = await db_now(session)
    return daemons_by_host(await list_workers(session, settings, now), now)


@dataclass(frozen=True)
class StoreProbe:
    """Whether the object store takes a write, gives it back and deletes it."""

    url: str
    ok: bool
    message: str
    hint: str = ""


async def probe_store(settings: Settings) -> StoreProbe:
    """Probe the configured store; a local folder that does not exist yet is reported, not made
    (that is `batchops init`'s job)."""
    try:
        store = open_store(settings)
    except StorageError as exc:
        return StoreProbe(settings.storage_url, False, str(exc), exc.hint)
    if isinstance(store, LocalStore) and not store.root.is_dir():
        return StoreProbe(store.url, False, "missing", "run `batchops init`")
    try:
        await asyncio.wait_for(store.probe(), timeout=settings.storage.timeout + 5)
    except StorageError as exc:
        return StoreProbe(store.url, False, str(exc), exc.hint)
    except TimeoutError:
        return StoreProbe(
            store.url,
            False,
            f"no answer within {settings.storage.timeout + 5:.0f} s",
            "check [storage] endpoint_url and that the store is running",
        )
    return StoreProbe(store.url, True, "write, read back and delete work")


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
    clock: HostClock
    hosts: list[HostDaemons]

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


async def uploads_by_status(
    session: UnitOfWork, *, since: datetime | None = None
) -> dict[UploadStatus, int]:
    """How many uploads are in each status (every status present, zero when none)."""
    query = select(Upload.status, func.count(Upload.id)).group_by(Upload.status)
    if since is not None:
        query = query.where(Upload.created_at >= since)
    counts = dict((await session.execute(query)).all())
    return {s: int(counts.get(s, 0)) for s in UploadStatus}


async def queued_uploads(
    session: UnitOfWork, *, limit: int | None = None, exclude: frozenset[int] = frozenset()
) -> list[tuple[int, str]]:
    """Queued uploads (id, file name), oldest first: what an in-process worker takes next."""
    query = (
        select(Upload.id, Upload.filename)
        .where(Upload.status == UploadStatus.QUEUED)
        .order_by(Upload.id)
    )
    if limit is not None:
        query = query.limit(limit + len(exclude))
    rows = [(i, name) for i, name in (await session.execute(query)).all() if i not in exclude]
    return rows[:limit] if limit is not None else rows


async def wait_until_final(
    db: Database, upload_ids: list[int], *, timeout: float, poll: float = 0.2
) -> list[UploadInfo]:
    """Poll the database (the truth) until every upload is final or `timeout` seconds passed;
    whoever processes them (this process, a daemon, another host)."""
    deadline = time.monotonic() + timeout
    while True:
        async with db.unit() as session:
            rows = (await session.scalars(select(Upload).where(Upload.id.in_(upload_ids)))).all()
        infos = {r.id: UploadInfo.of(r) for r in rows}
        ordered = [infos[i] for i in upload_ids if i in infos]
        if all(i.finished for i in ordered) or time.monotonic() >= deadline:
            return ordered
        await asyncio.sleep(poll)


async def system_status(
    session: UnitOfWork, *, actor: Actor, settings: Settings, queue_depth: int | None = None
) -> SystemStatus:
    """Everything `batchops status` shows, as plain data."""
    require(actor, Action.VIEW_RUNS)
    clock = await host_clock(session, settings)
    now = clock.skew.db_time
    counts = await uploads_by_status(session)

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
    workers = await list_workers(session, settings, now)
    return SystemStatus(
        at=now,
        uploads_by_status={s.value: counts[s] for s in UploadStatus},
        queued=await uploads(Upload.status == UploadStatus.QUEUED),
        processing=await uploads(Upload.status == UploadStatus.PROCESSING),
        recent_uploads=await uploads(
            Upload.status.notin_([UploadStatus.QUEUED, UploadStatus.PROCESSING]), newest=True
        ),
        running=await runs(JobRun.status == RunStatus.RUNNING),
        recent_runs=await runs(JobRun.status != RunStatus.RUNNING),
        workers=workers,
        next_firings=[FiringLine(*row) for row in firings],
        queue_depth=queue_depth,
        clock=clock,
        hosts=daemons_by_host(workers, now),
    )


async def queue_depth(settings: Settings) -> int | None:
    """Jobs waiting in arq's queue, or None without Redis (or when it does not answer)."""
    if not settings.uses_redis:
        return None
    client = Redis.from_url(
        settings.redis.url, socket_connect_timeout=settings.redis.connect_timeout
    )
    try:
        return int(await client.zcard(queue_name(settings)))
    except Exception:
        return None
    finally:
        await client.aclose()


@dataclass(frozen=True)
class MetricFigures:
    """The gauges' figures and the stage timings / schedule lags new since the last reading."""

    uploads: dict[UploadStatus, int]
    runs: list[tuple[str, str, int]]
    open_incidents: int
    workers_alive: int
    steps: list[tuple[int, str, int]]
    lags: list[tuple[int, float]]
    last_step_id: int
    last_run_id: int


async def metric_figures(
    session: UnitOfWork, settings: Settings, *, after_step: int | None, after_run: int | None
) -> MetricFigures:
    """Read the Prometheus figures; `None` ids prime the cursors (history is not observed)."""
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
    cutoff = await db_now(session) - timedelta(seconds=settings.worker.health_interval)
    alive = await session.scalar(
        select(func.count())
        .select_from(WorkerHeartbeat)
        .where(WorkerHeartbeat.heartbeat_at >= cutoff)
    )
    if after_step is None:
        after_step = await session.scalar(select(func.max(JobRunStep.id))) or 0
    if after_run is None:
        after_run = await session.scalar(select(func.max(JobRun.id))) or 0
    steps = (
        await session.execute(
            select(JobRunStep.id, JobRunStep.stage, JobRunStep.duration_ms)
            .where(JobRunStep.id > after_step, JobRunStep.duration_ms.is_not(None))
            .order_by(JobRunStep.id)
            .limit(10_000)
        )
    ).all()
    lags = (
        await session.execute(
            select(JobRun.id, JobRun.lateness_seconds)
            .where(
                JobRun.id > after_run,
                JobRun.scheduled_for.is_not(None),
                JobRun.lateness_seconds.is_not(None),
            )
            .order_by(JobRun.id)
            .limit(10_000)
        )
    ).all()
    return MetricFigures(
        uploads=await uploads_by_status(session),
        runs=[(str(k), str(s), int(n)) for k, s, n in runs],
        open_incidents=int(open_incidents or 0),
        workers_alive=int(alive or 0),
        steps=[(int(i), str(s), int(d)) for i, s, d in steps],
        lags=[(int(i), float(x)) for i, x in lags],
        last_step_id=max([after_step, *(s[0] for s in steps)]),
        last_run_id=max([after_run, *(r[0] for r in lags)]),
    )


@dataclass(frozen=True)
class Health:
    healthy: bool
    detail: str


async def worker_health(
    db: Database,
    settings: Settings,
    now: datetime | None = None,
    *,
    names: Collection[str] | None = None,
) -> Health:
    """Healthy when a (non-embedded) worker beat within `health_interval` of the database's clock
    and Redis (when configured) answers; an outage is named with its start.

    `names` narrows the question to those workers (`batchops-daemon --check`: this host's
    daemons), so a host whose own daemon is gone is unhealthy however alive the others are.
    """
    outage = await redis_outage(db, settings)
    if outage is not None:
        return Health(False, f"{outage}; the daemon waits for it and loses nothing queued")
    window = settings.worker.health_interval
    try:
        async with db.unit() as session:
            now = now or await db_now(session)
            rows = (
                await session.execute(
                    select(WorkerHeartbeat.name, WorkerHeartbeat.heartbeat_at)
                    .where(WorkerHeartbeat.embedded.is_(False))
                    .order_by(WorkerHeartbeat.heartbeat_at.desc())
                )
            ).all()
    except Exception as exc:
        if settings.uses_redis:
            return await _check_redis_keys(settings, str(exc), names)
        return Health(False, f"cannot read worker heartbeats: {exc}")
    cutoff = now - timedelta(seconds=window)
    alive = [(n, t) for n, t in rows if t >= cutoff]
    if names is not None:
        return _own_health(set(names), rows, alive, now, window)
    if alive:
        name, when = alive[0]
        age = (now - when).total_seconds()
        return Health(True, f"{len(alive)} worker(s) alive; {name} beat {age:.0f} s ago")
    if rows:
        name, when = rows[0]
        age = (now - when).total_seconds()
        return Health(False, f"no worker beat within {window} s; last was {name} {age:.0f} s ago")
    return Health(False, "no daemon worker is running (no heartbeat): start batchops-daemon.")


def _own_health(
    names: set[str],
    rows: list[Any],
    alive: list[Any],
    now: datetime,
    window: int,
) -> Health:
    """The verdict on this host's daemons `names`; other hosts' only named as not counting."""
    host = socket.gethostname()
    others = sorted({n for n, _ in alive if n not in names})
    elsewhere = ""
    if others:
        elsewhere = f"; {len(others)} daemon(s) of other hosts are alive but do not count"
    if not names:
        return Health(
            False,
            f"no batchops-daemon runs on {host}: start it here (systemctl start "
            f"batchops-daemon){elsewhere}",
        )
    mine = [(n, t) for n, t in alive if n in names]
    if mine:
        name, when = mine[0]
        age = (now - when).total_seconds()
        return Health(True, f"{len(mine)} daemon(s) of {host} alive; {name} beat {age:.0f} s ago")
    seen = [(n, t) for n, t in rows if n in names]
    if seen:
        name, when = seen[0]
        age = (now - when).total_seconds()
        why = f"{name} last beat {age:.0f} s ago (more than {window} s)"
    else:
        why = f"{', '.join(sorted(names))} never beat or stopped"
    return Health(
        False,
        f"no daemon of {host} is alive: {why}; restart it (systemctl restart batchops-daemon)"
        f"{elsewhere}",
    )


async def _check_redis_keys(
    settings: Settings, why: str, names: Collection[str] | None = None
) -> Health:
    client = Redis.from_url(
        settings.redis.url, socket_connect_timeout=settings.redis.connect_timeout
    )
    try:
        if names is None:
            keys = [k async for k in client.scan_iter(match=redis_pattern(settings), count=100)]
        elif names:
            wanted = [redis_key(settings, n) for n in names]
            keys = [k for k, v in zip(wanted, await client.mget(wanted), strict=True) if v]
        else:
            keys = []
    except Exception as exc:
        return Health(False, f"database unreadable ({why}) and Redis too ({exc})")
    finally:
        await client.aclose()
    since = await database_outage_since(settings)
    if since is not None:
        return Health(
            False,
            f"database unreachable since {clock(since)} ({why}); {len(keys)} worker(s) alive "
            "in Redis wait for it",
        )
    if keys:
        return Health(True, f"{len(keys)} worker key(s) alive in Redis (database unreadable)")
    return Health(False, f"no worker key in Redis; database unreadable ({why})")
