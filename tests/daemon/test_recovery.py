"""Recovery in seconds, for real: SIGKILL with claimed and unclaimed work, a Redis outage.

The daemons run with the production defaults that used to set the pace (`job_timeout` 600 s,
`stale_after_seconds` 60 s, heartbeats every 10 s): what brings the work back within 15 s is the
worker's liveness key (4 s TTL) and the every-second sweeper, not a minute of silence.
"""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from batchops_core.enums import RunStatus, UploadStatus
from batchops_core.infra.config import RedisSettings, Settings
from batchops_core.infra.db import Database, open_database
from batchops_core.models import JobRun, Upload, WorkerHeartbeat
from batchops_core.permissions import SYSTEM
from batchops_core.services.uploads import intake_file
from batchops_core.worker.dispatcher import Dispatcher
from batchops_core.worker.sweeper import WORKER_LOST
from tests.daemon.conftest import ROOT, DaemonProcess, fast_worker, wait_for, write_config
from tests.daemon.faults import PrivatePostgres, PrivateRedis, migrate

RECOVERY_BUDGET = 15.0
Start = Callable[..., DaemonProcess]


def gradebook(seed: int) -> str:
    return "Student ID,class,maths,english\n" + "".join(
        f"S{seed}{i:03d},9A,{40 + i},{60 + i % 30}\n" for i in range(1, 31)
    )


def production_pace(settings: Settings, **changes: object) -> Settings:
    """Default heartbeat, staleness and job timeout; only the metrics port and polling fast."""
    return fast_worker(
        settings,
        heartbeat_seconds=10,
        stale_after_seconds=60,
        health_interval=30,
        job_timeout=600,
        **changes,
    )


async def _intake(db: Database, settings: Settings, folder: Path, n: int) -> int:
    path = folder / f"marks{n}.csv"
    path.write_text(gradebook(n))
    return (await intake_file(db, settings, SYSTEM, path, source="Exams")).id


async def _runs(db: Database, upload_id: int) -> list[JobRun]:
    async with db.unit() as session:
        return list(
            await session.scalars(
                select(JobRun).where(JobRun.upload_id == upload_id).order_by(JobRun.id)
            )
        )


async def _upload(db: Database, upload_id: int) -> Upload:
    async with db.unit() as session:
        upload = await session.get(Upload, upload_id)
    assert upload is not None
    return upload


async def _running_on(db: Database, upload_id: int, worker_prefix: str) -> bool:
    """The upload runs (or ran) again on a worker whose name starts with `worker_prefix`."""
    runs = await _runs(db, upload_id)
    return any(r.worker and r.worker.startswith(worker_prefix) for r in runs)


async def test_sigkill_claimed_and_unclaimed_back_within_seconds(
    redis_settings: Settings, db: Database, tmp_path: Path, daemons: Start
) -> None:
    settings = production_pace(redis_settings)
    config = write_config(tmp_path / "config.toml", settings)
    folder = tmp_path / "in"
    folder.mkdir()
    claimed = await _intake(db, settings, folder, 1)
    unclaimed = await _intake(db, settings, folder, 2)
    # The first daemon names itself as on another host: the survivor must judge it by its Redis
    # liveness key, not by its PID.
    first = daemons(
        config,
        env={
            "BATCHOPS_TEST_STALL_STAGE": "validate",
            "BATCHOPS_TEST_HOLD_UPLOAD": str(unclaimed),
            "BATCHOPS_TEST_HOST": "elsewhere",
        },
    )
    dispatcher = await Dispatcher.connect(db, settings)
    await dispatcher.process_upload(claimed)
    await dispatcher.process_upload(unclaimed)
    await dispatcher.close()

    async def both_held() -> bool:
        out = first.output()
        return "stalling at" in out and f"holding upload {unclaimed}" in out

    await wait_for(both_held, timeout=60)
    assert (await _upload(db, unclaimed)).status is UploadStatus.QUEUED
    assert (await _upload(db, claimed)).status is UploadStatus.PROCESSING

    second = daemons(config)

    async def second_beats() -> bool:
        async with db.unit() as session:
            names = list(await session.scalars(select(WorkerHeartbeat.name)))
        return any("elsewhere" not in n for n in names)

    await wait_for(second_beats, timeout=60)
    first.signal(signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL
    killed_at = time.monotonic()

    async def both_running_again() -> bool:
        for upload_id in (claimed, unclaimed):
            runs = await _runs(db, upload_id)
            if not runs or (runs[-1].worker or "").startswith("daemon@elsewhere"):
                return False
        return True

    await wait_for(both_running_again, timeout=RECOVERY_BUDGET + 5)
    recovery = time.monotonic() - killed_at
    assert recovery <= RECOVERY_BUDGET, f"{recovery:.1f} s\n{second.output()}"

    async def published() -> bool:
        ups = [await _upload(db, u) for u in (claimed, unclaimed)]
        return all(u.status is UploadStatus.PUBLISHED for u in ups)

    await wait_for(published, timeout=60)
    claimed_runs = await _runs(db, claimed)
    assert [(r.status, r.error_code) for r in claimed_runs] == [
        (RunStatus.FAILED, WORKER_LOST),
        (RunStatus.SUCCEEDED, None),
    ], second.output()
    assert [r.status for r in await _runs(db, unclaimed)] == [RunStatus.SUCCEEDED]
    assert "rescued job" in second.output()
    second.signal(signal.SIGHUP)  # SIGHUP stops like SIGTERM: clean, exit 0
    assert second.wait(timeout=30) == 0, second.output()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.kill()


def _check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchops_daemon.main", "--config", str(config), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("outage_seconds", [60])
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # Redis is the fault here
async def test_redis_outage_survived_and_queue_restored(
    db_settings: Settings,
    db: Database,
    tmp_path: Path,
    daemons: Start,
    private_redis: PrivateRedis,
    outage_seconds: int,
) -> None:
    redis = RedisSettings(url=private_redis.url, prefix="bo-outage", connect_timeout=1.0)
    settings = production_pace(dataclasses.replace(db_settings, redis=redis))
    config = write_config(tmp_path / "config.toml", settings)
    folder = tmp_path / "in"
    folder.mkdir()
    daemon = daemons(
        config, env={"BATCHOPS_TEST_STALL_STAGE": "validate", "BATCHOPS_TEST_STALL_SECONDS": "4"}
    )
    in_flight = await _intake(db, settings, folder, 1)
    dispatcher = await Dispatcher.connect(db, settings)
    await dispatcher.process_upload(in_flight)
    await dispatcher.close()
    await wait_for(lambda: _has(daemon, "stalling at"), timeout=60)

    private_redis.kill()
    down_at = time.monotonic()
    waiting = [await _intake(db, settings, folder, n) for n in (2, 3)]

    async def in_flight_done() -> bool:
        return (await _upload(db, in_flight)).status is UploadStatus.PUBLISHED

    await wait_for(in_flight_done, timeout=60)  # a job in hand finishes during the outage
    await wait_for(lambda: _has(daemon, "Redis unreachable since"), timeout=20)
    check = _check(config)
    assert check.returncode == 1 and "Redis unreachable since" in check.stdout, check.stdout
    while time.monotonic() - down_at < outage_seconds:
        assert daemon.proc.poll() is None, daemon.output()
        time.sleep(0.5)

    private_redis.start()
    up_at = time.monotonic()

    async def all_running() -> bool:
        ups = [await _upload(db, u) for u in waiting]
        return all(u.status is not UploadStatus.QUEUED for u in ups)

    await wait_for(all_running, timeout=RECOVERY_BUDGET + 5)
    assert time.monotonic() - up_at <= RECOVERY_BUDGET

    async def all_published() -> bool:
        ups = [await _upload(db, u) for u in waiting]
        return all(u.status is UploadStatus.PUBLISHED for u in ups)

    await wait_for(all_published, timeout=60)
    out = daemon.output()
    assert out.count("Redis unreachable since") == 1, out
    assert "Redis reachable again" in out
    assert "Traceback" not in out, out
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0, daemon.output()


async def _has(daemon: DaemonProcess, text: str) -> bool:
    return text in daemon.output()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    try:
        server = PrivatePostgres()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"no private PostgreSQL cluster: {exc}")
    server.start()
    yield server
    server.remove()


async def test_database_outage_survived_and_no_run_lost(
    settings: Settings,
    redis_url: str,
    tmp_path: Path,
    daemons: Start,
    private_postgres: PrivatePostgres,
) -> None:
    outage_seconds = 30
    base = dataclasses.replace(
        settings,
        database=dataclasses.replace(
            settings.database, url=private_postgres.url, connect_timeout=2.0
        ),
        redis=RedisSettings(url=redis_url, prefix=f"bo-dbout-{time.monotonic_ns()}"),
    )
    config_settings = production_pace(base, max_jobs=1)
    await migrate(config_settings)
    db = open_database(config_settings)
    try:
        config = write_config(tmp_path / "config.toml", config_settings)
        folder = tmp_path / "in"
        folder.mkdir()
        daemon = daemons(
            config,
            env={"BATCHOPS_TEST_STALL_STAGE": "validate", "BATCHOPS_TEST_STALL_SECONDS": "3"},
        )
        in_flight = await _intake(db, config_settings, folder, 1)
        waiting = [await _intake(db, config_settings, folder, n) for n in (2, 3)]
        dispatcher = await Dispatcher.connect(db, config_settings)
        for upload_id in (in_flight, *waiting):
            await dispatcher.process_upload(upload_id)
        await dispatcher.close()
        await wait_for(lambda: _has(daemon, "stalling at"), timeout=60)

        private_postgres.stop()
        down_at = time.monotonic()
        await wait_for(lambda: _has(daemon, "database unreachable since"), timeout=20)
        check = _check(config)
        assert check.returncode == 1 and "database unreachable since" in check.stdout, (
            check.stdout + check.stderr
        )
        while time.monotonic() - down_at < outage_seconds:
            assert daemon.proc.poll() is None, daemon.output()
            time.sleep(0.5)
        private_postgres.start()
        up_at = time.monotonic()
        await db.dispose()

        async def all_running() -> bool:
            ups = [await _upload(db, u) for u in (in_flight, *waiting)]
            return all(u.status is not UploadStatus.QUEUED for u in ups)

        await wait_for(all_running, timeout=RECOVERY_BUDGET + 5)
        assert time.monotonic() - up_at <= RECOVERY_BUDGET

        async def all_published() -> bool:
            ups = [await _upload(db, u) for u in (in_flight, *waiting)]
            return all(u.status is UploadStatus.PUBLISHED for u in ups)

        await wait_for(all_published, timeout=90)
        for upload_id in (in_flight, *waiting):
            codes = [r.error_code for r in await _runs(db, upload_id)]
            assert WORKER_LOST not in codes, (upload_id, codes)
        out = daemon.output()
        assert out.count("database unreachable since") == 1, out
        assert "database reachable again" in out
        assert "Traceback" not in out, out
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0, daemon.output()
    finally:
        await db.dispose()
