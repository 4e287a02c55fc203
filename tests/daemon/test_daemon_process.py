"""`batchops-daemon` as a process: start-up errors, health, graceful stop, systemd, `--once`."""

from __future__ import annotations

import dataclasses
import re
import signal
import socket
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from arq import create_pool
from sqlalchemy import func, select, update

from batchops_core.enums import RunStatus
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Job, JobRun, WorkerHeartbeat
from batchops_core.permissions import SYSTEM
from batchops_core.services.status import worker_health
from batchops_core.services.uploads import intake_file
from batchops_core.worker.arq_settings import arq_redis_settings, queue_name
from tests.daemon.conftest import DaemonProcess, fast_worker, wait_for, write_config

Start = Callable[..., DaemonProcess]


async def _alive(db: Database, settings: Settings) -> bool:
    return (await worker_health(db, settings)).healthy


async def test_sigterm_hands_back_the_running_job_and_exits_0(
    redis_settings: Settings, db: Database, tmp_path: Path, daemons: Start
) -> None:
    settings = fast_worker(redis_settings, shutdown_grace=1)
    config = write_config(tmp_path / "config.toml", settings)
    daemon = daemons(config, env={"BATCHOPS_TEST_TASKS": "1"})
    await wait_for(lambda: _alive(db, settings), timeout=30)

    check = daemons(config, "--check")
    assert check.wait() == 0 and "healthy" in check.output()

    pool = await create_pool(arq_redis_settings(settings), default_queue_name=queue_name(settings))
    try:
        await pool.enqueue_job("sleep_test", 3600)

        async def running() -> int | None:
            async with db.unit() as session:
                return await session.scalar(
                    select(JobRun.id).where(
                        JobRun.task == "sleep_test", JobRun.status == RunStatus.RUNNING
                    )
                )

        run_id = await wait_for(running, timeout=20)
        started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0, daemon.output()
        assert time.monotonic() - started < settings.worker.shutdown_grace + 10
        assert await pool.zcard(queue_name(settings)) == 1, "the job went back to the queue"
    finally:
        await pool.aclose()
    async with db.unit() as session:
        run = await session.get(JobRun, run_id)
        assert run is not None and run.status is RunStatus.CANCELLED
        assert await session.scalar(select(func.count()).select_from(WorkerHeartbeat)) == 0
    assert not await _alive(db, settings)
    check = daemons(config, "--check")
    assert check.wait() == 1 and "unhealthy" in check.output()


def test_unreachable_redis_and_database_give_a_sentence_not_a_hang(
    db_settings: Settings, tmp_path: Path, daemons: Start
) -> None:
    no_redis = dataclasses.replace(
        db_settings, redis=dataclasses.replace(db_settings.redis, url="redis://127.0.0.1:1/0")
    )
    started = time.monotonic()
    process = daemons(write_config(tmp_path / "a.toml", no_redis))
    assert process.wait(timeout=30) == 1
    assert "cannot connect to Redis at redis://127.0.0.1:1/0" in process.output()
    no_db = dataclasses.replace(
        db_settings,
        database=dataclasses.replace(
            db_settings.database, url="postgresql+asyncpg://postgres@127.0.0.1:1/none"
        ),
    )
    process = daemons(write_config(tmp_path / "b.toml", no_db))
    assert process.wait(timeout=30) == 1
    assert "cannot connect to the database" in process.output()
    assert "Traceback" not in process.output()
    assert time.monotonic() - started < 30


async def test_systemd_ready_and_watchdog_without_redis(
    db_settings: Settings, db: Database, tmp_path: Path, daemons: Start
) -> None:
    settings = fast_worker(db_settings)
    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(20)
    try:
        daemon = daemons(
            write_config(tmp_path / "config.toml", settings),
            env={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "1000000"},
        )
        seen: list[str] = []
        while not any(s.startswith("WATCHDOG=1") for s in seen):
            seen.append(sock.recv(4096).decode())
        assert seen[0].startswith("READY=1") and "no Redis" in seen[0]
        await wait_for(lambda: _alive(db, settings), timeout=10)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0, daemon.output()
        assert any(sock.recv(4096).decode().startswith("STOPPING=1") for _ in range(5))
    finally:
        sock.close()


async def test_once_runs_due_schedules_and_uploads_and_reports_each(
    db_settings: Settings, db: Database, tmp_path: Path, daemons: Start
) -> None:
    for name, content in (("marks.csv", "Student ID,maths\nS1,50\nS2,60\n"), ("empty.csv", "")):
        path = tmp_path / "in" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(content)
        await intake_file(db, db_settings, SYSTEM, path, source="Exams")
    async with db.unit() as session:
        # The seeded schedules fire every few minutes: off, so a 5-minute boundary between the
        # two runs cannot make one of them due again.
        await session.execute(update(Job).values(enabled=False))
        due = (utcnow() - timedelta(minutes=3)).replace(second=0, microsecond=0)
        session.add_all(
            [
                Job(name="probe", task="noop", cron="0 0 1 1 *", next_run_at=due),
                Job(
                    name="bad-feed",
                    task="ingest_department",
                    arguments={"department": "Nope"},
                    cron="0 0 1 1 *",
                    next_run_at=due,
                ),
            ]
        )
    config = write_config(tmp_path / "config.toml", fast_worker(db_settings))
    once = daemons(config, "--once")
    assert once.wait(timeout=60) == 1, once.output()
    out = once.output()
    assert "ok   schedule" in out and "probe: succeeded" in out
    assert "FAIL schedule" in out and "bad-feed: failed" in out
    assert "marks.csv: published (2 rows)" in out
    assert "FAIL upload" in out and "empty.csv: failed (EMPTY_FILE" in out
    assert re.search(r"\n2 succeeded, 2 failed\n", out), out
    again = daemons(config, "--once")
    assert again.wait(timeout=60) == 0, again.output()
    assert "nothing to do" in again.output(), "the firings moved on: nothing is due twice"
    assert "INFO" not in again.output(), "scripts get result lines, not info logs"
