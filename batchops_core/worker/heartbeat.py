"""Per-worker heartbeats: a WorkerHeartbeat row, a Redis key with a TTL, and the runs in hand.

arq's own health key is shared by every worker of a queue and deleted by whichever stops first
(arq #291), so BatchOps keeps its own: each worker process (daemon or embedded) upserts its row
and sets `<prefix>:worker:<name>` every `heartbeat_seconds`, and bumps `job_runs.heartbeat_at` of
exactly the runs it is executing. Beside them runs the one-second liveness key of `liveness.py`,
which is what tells a sweeper within seconds that a worker died (the database heartbeat only
backs it up where liveness cannot tell, e.g. another host without Redis).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from redis.asyncio import Redis
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core.enums import RunStatus
from batchops_core.infra import events
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import JobRun, WorkerHeartbeat
from batchops_core.worker.liveness import LivenessBeat

log = logging.getLogger(__name__)


def worker_name(kind: str = "daemon") -> str:
    """A name unique to this process: `<kind>@<host>:<pid>`."""
    return f"{kind}@{socket.gethostname()}:{os.getpid()}"


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
        self.started_at = utcnow()
        self._task: asyncio.Task[None] | None = None
        self.last_beat: datetime | None = None
        self.liveness = LivenessBeat(settings, name, self.tracker)
        self._failing = False

    async def beat(self) -> None:
        """One beat: the row, the runs in hand, the Redis key, an event; raises on DB errors."""
        now = utcnow()
        async with self.db.unit() as session:
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
        await events.publish(
            self.settings,
            events.Event(type="worker.heartbeat", id=self.name, data={"jobs": self.tracker.busy}),
        )

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
        host, _, pid = beat.name.partition("@")[2].rpartition(":")
        session.add(
            WorkerHeartbeat(
                name=beat.name,
                host=host or socket.gethostname(),
                pid=int(pid) if pid.isdigit() else os.getpid(),
                embedded=beat.embedded,
                started_at=beat.started_at,
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
    """Every worker row, newest heartbeat first, with `alive` judged by `health_interval`."""
    now = now or utcnow()
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
    cutoff = (now or utcnow()) - timedelta(days=1)
    result = await session.execute(
        delete(WorkerHeartbeat).where(WorkerHeartbeat.heartbeat_at < cutoff)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
