"""Schedule dispatch: due firings from the database, once across daemons, late firings once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from arq import create_pool
from sqlalchemy import func, select, update

from batchops_core.enums import RunStatus
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Job, JobRun
from batchops_core.worker.arq_settings import arq_redis_settings, queue_name
from batchops_core.worker.dispatch_loop import dispatch_due, run_dispatch_loop
from batchops_core.worker.dispatcher import Dispatcher
from tests.daemon.conftest import fast_worker, wait_for


async def _job(db: Database, name: str, *, due_ago: timedelta, cron: str = "* * * * *") -> int:
    async with db.unit() as session:
        # The only enabled schedule: the seeded ones become due while the session runs.
        await session.execute(update(Job).values(enabled=False))
        job = Job(
            name=name,
            task="noop",
            arguments={},
            cron=cron,
            timezone="UTC",
            enabled=True,
            next_run_at=(utcnow() - due_ago).replace(second=0, microsecond=0),
        )
        session.add(job)
        await session.flush()
        return job.id


async def test_three_daemons_fire_a_schedule_once(redis_settings: Settings, db: Database) -> None:
    settings = fast_worker(redis_settings)
    job_id = await _job(db, "every-minute", due_ago=timedelta(seconds=5))
    dispatchers = [
        Dispatcher(
            db,
            settings,
            await create_pool(
                arq_redis_settings(settings), default_queue_name=queue_name(settings)
            ),
        )
        for _ in range(3)
    ]
    try:
        before = utcnow()
        reports = await asyncio.gather(*(dispatch_due(db, d) for d in dispatchers))
        assert sum(len(r.enqueued) for r in reports) == 1
        queued = await dispatchers[0].pool.zcard(queue_name(settings))  # type: ignore[union-attr]
        assert queued == 1
        async with db.unit() as session:
            job = await session.get(Job, job_id)
            assert job is not None and job.next_run_at is not None
            # past the moment of the dispatch (not "now": a minute may have ended meanwhile)
            assert job.next_run_at > before, "the schedule moved to its next firing"
    finally:
        for d in dispatchers:
            await d.close()


async def test_missed_firings_run_once_and_record_lateness(
    db: Database, db_settings: Settings
) -> None:
    settings = fast_worker(db_settings)
    job_id = await _job(db, "downtime", due_ago=timedelta(hours=1))
    dispatcher = Dispatcher(db, settings)
    try:
        now = utcnow()  # one instant for both passes: the minute may not roll over between them
        first = await dispatch_due(db, dispatcher, now=now)
        second = await dispatch_due(db, dispatcher, now=now)
        await dispatcher.wait_idle()
    finally:
        await dispatcher.close()
    assert len(first.enqueued) == 1 and not second.enqueued
    async with db.unit() as session:
        runs = (await session.scalars(select(JobRun).where(JobRun.job_id == job_id))).all()
        job = await session.get(Job, job_id)
    assert len(runs) == 1, "sixty missed minutes fire once"
    assert runs[0].status is RunStatus.SUCCEEDED
    assert runs[0].lateness_seconds is not None and runs[0].lateness_seconds >= 3540
    assert any("after its firing time" in line for line in runs[0].log)
    assert job is not None and job.last_status is RunStatus.SUCCEEDED


async def test_a_new_schedule_fires_without_restart(db: Database, db_settings: Settings) -> None:
    settings = fast_worker(db_settings)
    dispatcher = Dispatcher(db, settings)
    stop = asyncio.Event()
    loop = asyncio.create_task(run_dispatch_loop(db, dispatcher, interval=0.1, stop=stop))
    try:
        await asyncio.sleep(0.2)  # the loop has made a pass over an empty schedule table
        job_id = await _job(db, "added-later", due_ago=timedelta(seconds=1))

        async def fired() -> int:
            async with db.unit() as session:
                return int(
                    await session.scalar(
                        select(func.count(JobRun.id)).where(
                            JobRun.job_id == job_id, JobRun.status == RunStatus.SUCCEEDED
                        )
                    )
                    or 0
                )

        assert await wait_for(fired, timeout=10) == 1
    finally:
        stop.set()
        await loop
        await dispatcher.close()


async def test_run_schedule_is_idempotent_per_firing(db: Database, db_settings: Settings) -> None:
    from batchops_core.worker.context import TaskContext
    from batchops_core.worker.tasks import run_schedule

    job_id = await _job(db, "twice", due_ago=timedelta(minutes=1))
    when = (utcnow() - timedelta(minutes=1)).replace(second=0, microsecond=0).isoformat()
    ctx = TaskContext(db=db, settings=db_settings, worker="test@h:1")
    first = await run_schedule(ctx, job_id, when)
    second = await run_schedule(ctx, job_id, when)
    assert first["status"] == "succeeded"
    assert second["status"] == "duplicate" and second["run_id"] == first["run_id"]
