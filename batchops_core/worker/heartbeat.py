"""Per-worker heartbeats: a WorkerHeartbeat row, a Redis key with a TTL, and the runs in hand.

arq's own health key is shared by every worker of a queue and deleted by whichever stops first
(arq #291), so BatchOps keeps its own: each worker process (daemon or embedded) upserts its row
and sets `<prefix>:worker:<name>` every `heartbeat_seconds`, and bumps `job_runs.heartbeat_at` of
exactly the runs it is executing. Beside them runs the one-second liveness key of `liveness.py`,
which is what tells a sweeper within seconds that a worker died (the database heartbeat only
backs it up where liveness cannot tell, e.g. another host without Redis).

Every time written here is the database's clock (`db_now`), read in the beat's own transaction:
other hosts compare these rows with *their* reading of the same clock, so a host whose clock
drifts neither looks dead nor makes others look dead. Each beat also measures this host's skew
and warns while it exceeds `max_clock_skew_seconds`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from redis.asyncio import Redis
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core.enums import RunStatus
from batchops_core.infra import events
from batchops_core.infra.clock import SKEW_ADVICE, Skew, db_now, measure_skew
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import JobRun, WorkerHeartbeat
from batchops_core.worker.liveness import LivenessBeat, parse_name

log = logging.getLogger(__name__)


def worker_name(kind: str = "daemon") -> str:
    """A name no other process shares: `<kind>@<host>:<pid>:<8 hex>`.

    Host and PID alone repeat: two containers with the same hostname each run their daemon as
    PID 1 (or 7), and would share one heartbeat row and each other's runs.
    """
    return f"{kind}@{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def redis_key(settings: Settings, name: str) -> str:
    return f"{settings.redis.prefix}:worker:{name}"


def redis_pattern(settings: Settings) -> str:
    return f"{settings.redis.prefix}:worker:*"


@dataclass
class WorkTracker:
    """What this worker is executing right now, so heartbeats keep exactly those runs alive."""

    uploads: dict[int, int] = field(default_factory=dict)
    runs: dict[int, int] = field(default_factory=dict)
    jobs: set[str] = field(default_factory=set)
    """arq job ids in hand, so a sweeper can tell a dead worker's jobs from a live one's."""

    def add_upload(self, upload_id: int) -> None:
        self.uploads[upload_id] = self.uploads.get(upload_id, 0) + 1

    def done_upload(self, upload_id: int) -> None:
        left = self.uploads.get(upload_id, 0) - 1
        if left > 0:
            self.uploads[upload_id] = left
        else:
            self.uploads.pop(upload_id, None)

    def add_run(self, run_id: int) -> None:
        self.runs[run_id] = self.runs.get(run_id, 0) + 1

    def done_run(self, run_id: int) -> None:
        left = self.runs.get(run_id, 0) - 1
        if left > 0:
            self.runs[run_id] = left
        else:
            self.runs.pop(run_id, None)

    @property
    def busy(self) -> int:
        return len(self.uploads) + len(self.runs)


class Heartbeat:
    """Beats for one worker process until stopped; `beat()` is also callable on its own."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        name: str,
        *,
        tracker: WorkTracker | None = None,
        embedded: bool = False,
        redis: Redis | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.name = name
        self.tracker = tracker or WorkTracker()
        self.embedded = embedded
        self.redis = redis
        self.started_at: datetime | None = None
        """The database's time of the first beat."""
        self._task: asyncio.Task[None] | None = None
        self.last_beat: datetime | None = None
        self.skew: Skew | None = None
        """This host's clock against the database's, measured at the last beat."""
        self.liveness = LivenessBeat(settings, name, self.tracker)
        self._failing = False

    async def beat(self) -> None:
        """One beat: the row, the runs in hand, the Redis key, an event; raises on DB errors."""
        async with self.db.unit() as session:
            self.skew = await measure_skew(session)
            now = self.skew.db_time
            if self.started_at is None:
                self.started_at = now
            await _upsert(session, self, now)
            uploads, runs = list(self.tracker.uploads), list(self.tracker.runs)
            if uploads or runs:
                await session.execute(
                    update(JobRun)
                    .where(
                        JobRun.status == RunStatus.RUNNING,
                        JobRun.worker == self.name,
                        or_(JobRun.upload_id.in_(uploads), JobRun.id.in_(runs)),
                    )
                    .values(heartbeat_at=now)
                )
        if self.redis is not None:
            ttl = max(self.settings.worker.health_interval, self.settings.worker.heartbeat_seconds)
            try:
                await self.redis.set(redis_key(self.settings, self.name), now.isoformat(), ex=ttl)
            except Exception as exc:  # Redis down: the database row still says we are alive
                log.debug("could not record the heartbeat in Redis: %s", exc)
        self.last_beat = now
        self._warn_skew(self.skew)
        await events.publish(
            self.settings,
            events.Event(type="worker.heartbeat", id=self.name, data={"jobs": self.tracker.busy}),
        )

    def _warn_skew(self, skew: Skew) -> None:
        limit = self.settings.worker.max_clock_skew_seconds
        if skew.exceeds(limit):
            host = parse_name(self.name)[0] or socket.gethostname()
            log.warning("%s (more than %g s): %s", skew.describe(host), limit, SKEW_ADVICE)

    def start(self) -> None:
        self.liveness.start()
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"heartbeat:{self.name}")

    async def _loop(self) -> None:
        while True:
            try:
                await self.beat()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # said once per outage; the next beat may succeed
                if not self._failing:
                    log.warning("heartbeat of %s failed: %s", self.name, _sentence(exc))
                self._failing = True
            else:
                if self._failing:
                    log.info("heartbeat of %s recorded again", self.name)
                self._failing = False
            await asyncio.sleep(self.settings.worker.heartbeat_seconds)

    async def stop(self, *, remove: bool = True) -> None:
        """Stop beating; `remove` deletes the row and key so the worker shows as gone at once."""
        await self.liveness.stop(remove=remove)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if not remove:
            return
        try:
            async with self.db.unit() as session:
                await session.execute(
                    delete(WorkerHeartbeat).where(WorkerHeartbeat.name == self.name)
                )
        except Exception as exc:
            log.warning("could not remove the heartbeat row of %s: %s", self.name, exc)
        if self.redis is not None:
            try:
                await self.redis.delete(redis_key(self.settings, self.name))
            except Exception as exc:
                log.warning("could not remove the heartbeat key of %s: %s", self.name, exc)


def _sentence(exc: BaseException) -> str:
    """The first line of a driver error (asyncpg/SQLAlchemy messages run to many lines)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def _upsert(session: AsyncSession, beat: Heartbeat, now: datetime) -> None:
    row = await session.get(WorkerHeartbeat, beat.name)
    if row is None:
        host, pid = parse_name(beat.name)
        session.add(
            WorkerHeartbeat(
                name=beat.name,
                host=host or socket.gethostname(),
                pid=os.getpid() if pid is None else pid,
                embedded=beat.embedded,
                started_at=beat.started_at or now,
                heartbeat_at=now,
                jobs_running=beat.tracker.busy,
            )
        )
    else:
        row.heartbeat_at = now
        row.jobs_running = beat.tracker.busy


@dataclass(frozen=True)
class WorkerState:
    name: str
    host: str
    pid: int
    embedded: bool
    started_at: datetime
    heartbeat_at: datetime
    jobs_running: int
    alive: bool


async def list_workers(
    session: AsyncSession, settings: Settings, now: datetime | None = None
) -> list[WorkerState]:
    """Every worker row, newest heartbeat first, with `alive` judged by `health_interval` on the
    database's clock (or `now`, a reading of it)."""
    now = now or await db_now(session)
    cutoff = now - timedelta(seconds=settings.worker.health_interval)
    rows = (
        await session.scalars(select(WorkerHeartbeat).order_by(WorkerHeartbeat.heartbeat_at.desc()))
    ).all()
    return [
        WorkerState(
            name=r.name,
            host=r.host,
            pid=r.pid,
            embedded=r.embedded,
            started_at=r.started_at,
            heartbeat_at=r.heartbeat_at,
            jobs_running=r.jobs_running,
            alive=r.heartbeat_at >= cutoff,
        )
        for r in rows
    ]


async def prune_dead(session: AsyncSession, settings: Settings, now: datetime | None = None) -> int:
    """Delete worker rows silent for a day; they only clutter the health view."""
    cutoff = (now or await db_now(session)) - timedelta(days=1)
    result = await session.execute(
        delete(WorkerHeartbeat).where(WorkerHeartbeat.heartbeat_at < cutoff)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
