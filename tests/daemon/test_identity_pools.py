"""Settings that size a worker process take effect (#15): the database pool on PostgreSQL and
the number of warm pipeline processes."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

import pytest

from batchops_core.infra.config import Settings
from batchops_core.infra.db import open_database
from batchops_core.pipeline.pool import configure_pool, default_size, get_pool, shutdown_pool
from batchops_core.worker.context import TaskContext


async def test_database_pool_size_and_overflow_reach_the_engine(db_settings: Settings) -> None:
    settings = dataclasses.replace(
        db_settings,
        database=dataclasses.replace(db_settings.database, pool_size=3, max_overflow=2),
    )
    db = open_database(settings)
    try:
        if db.is_sqlite:
            assert db.engine.pool.size() != 3, "SQLite keeps its own pool"
            return
        assert db.engine.pool.size() == 3
        held = [await db.engine.connect() for _ in range(5)]
        try:
            assert db.engine.pool.checkedout() == 5
            assert db.engine.pool.overflow() == 2, "two beyond the pool, no more allowed"
        finally:
            for conn in held:
                await conn.close()
    finally:
        await db.dispose()


@pytest.fixture
def fresh_pool() -> Iterator[None]:
    """A pipeline pool of this test's own, and the auto size restored after it."""
    shutdown_pool()
    yield
    shutdown_pool()
    configure_pool(0)


def test_default_stage_processes_follow_the_cores() -> None:
    assert default_size(0) == max(2, min(4, os.cpu_count() or 2))
    assert default_size(6) == 6


async def test_stage_processes_size_the_pipeline_pool(settings: Settings, fresh_pool: None) -> None:
    one = dataclasses.replace(
        settings, pipeline=dataclasses.replace(settings.pipeline, stage_processes=1)
    )
    TaskContext(db=None, settings=one, worker="daemon@h:1:00000001")  # type: ignore[arg-type]
    pool = get_pool()
    assert pool.size == 1
    await pool.warm_up()
    assert len(pool.pids()) == 1, "one warm process, not the 2–4 of the automatic rule"
    auto = dataclasses.replace(
        settings, pipeline=dataclasses.replace(settings.pipeline, stage_processes=0)
    )
    TaskContext(db=None, settings=auto, worker="daemon@h:1:00000002")  # type: ignore[arg-type]
    assert get_pool().size == default_size()
