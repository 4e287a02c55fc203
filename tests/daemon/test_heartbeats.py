"""Per-worker heartbeats keep exactly the runs in hand alive; health reads them."""

from __future__ import annotations

from datetime import timedelta

from redis.asyncio import Redis
from sqlalchemy import select

from batchops_core.enums import RunKind, RunStatus
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import JobRun, WorkerHeartbeat
from batchops_core.services.status import worker_health
from batchops_core.worker.heartbeat import Heartbeat, WorkTracker, list_workers, redis_key
from tests.daemon.conftest import fast_worker


async def _run(db: Database, worker: str, minutes_ago: int) -> int:
    old = utcnow() - timedelta(minutes=minutes_ago)
    async with db.unit() as session:
        run = JobRun(
            kind=RunKind.AUTOMATION,
            task="noop",
            status=RunStatus.RUNNING,
            worker=worker,
            started_at=old,
            heartbeat_at=old,
        )
        session.add(run)
        await session.flush()
        return run.id


async def test_beat_touches_only_runs_in_hand(db: Database, db_settings: Settings) -> None:
    settings = fast_worker(db_settings)
    tracker = WorkTracker()
    beat = Heartbeat(db, settings, "daemon@host-a:101", tracker=tracker)
    mine = await _run(db, beat.name, 10)
    finished_elsewhere = await _run(db, beat.name, 10)
    other = await _run(db, "daemon@host-b:202", 10)
    tracker.add_run(mine)
    await beat.beat()
    async with db.unit() as session:
        beats = {
            r.id: r.heartbeat_at
            for r in await session.scalars(select(JobRun).where(JobRun.worker.is_not(None)))
        }
        row = await session.get(WorkerHeartbeat, beat.name)
    fresh = utcnow() - timedelta(seconds=30)
    assert beats[mine] > fresh
    assert beats[finished_elsewhere] < fresh, "a run not in hand must not be kept alive"
    assert beats[other] < fresh
    assert row is not None and row.host == "host-a" and row.pid == 101 and row.jobs_running == 1

    health = await worker_health(db, settings)
    assert health.healthy, health.detail
    async with db.unit() as session:
        states = await list_workers(session, settings)
    assert [s.name for s in states if s.alive] == [beat.name]

    await beat.stop()
    health = await worker_health(db, settings)
    assert not health.healthy and "no daemon worker is running" in health.detail


async def test_stale_and_embedded_workers_are_not_healthy(
    db: Database, db_settings: Settings
) -> None:
    settings = fast_worker(db_settings)
    embedded = Heartbeat(db, settings, "embedded@host:1", embedded=True)
    await embedded.beat()
    assert not (await worker_health(db, settings)).healthy, "the TUI's worker is not a daemon"
    daemon = Heartbeat(db, settings, "daemon@host:2")
    await daemon.beat()
    later = utcnow() + timedelta(seconds=settings.worker.health_interval + 1)
    health = await worker_health(db, settings, now=later)
    assert not health.healthy and "daemon@host:2" in health.detail


async def test_beat_sets_a_redis_key_with_ttl(redis_settings: Settings, db: Database) -> None:
    settings = fast_worker(redis_settings)
    client = Redis.from_url(settings.redis.url)
    try:
        beat = Heartbeat(db, settings, "daemon@host:3", redis=client)
        await beat.beat()
        ttl = await client.ttl(redis_key(settings, beat.name))
        assert 0 < ttl <= settings.worker.health_interval
        await beat.stop()
        assert not await client.exists(redis_key(settings, beat.name))
    finally:
        await client.aclose()
