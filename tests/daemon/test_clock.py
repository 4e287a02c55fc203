"""One clock (#15): a host whose clock runs 90 s ahead neither sweeps another host's live run,
nor fires a schedule early, nor writes its heartbeats in its own time; it is told to fix NTP.

The database is real on both backends; what is faked is *this host's* clock, the thing under
test: `utcnow` is moved ahead in `infra.clock` and in every module that imported it by name.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from batchops_core.enums import RunKind, RunStatus, UploadStatus
from batchops_core.infra import clock
from batchops_core.infra.clock import db_now, measure_skew
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Job, JobRun, Upload, WorkerHeartbeat
from batchops_core.services.status import worker_health
from batchops_core.worker.dispatch_loop import dispatch_due
from batchops_core.worker.dispatcher import Dispatcher
from batchops_core.worker.heartbeat import Heartbeat, list_workers
from batchops_core.worker.liveness import LivenessJudge
from batchops_core.worker.scheduler import claim_due_firings
from batchops_core.worker.sweeper import SweepState, sweep_once
from batchops_tui.cli.main import main

AHEAD = 90.0
OTHER = "daemon@other-host:4242:0badcafe"

SkewHost = Callable[[float], None]


@pytest.fixture
def skew_host(monkeypatch: pytest.MonkeyPatch) -> SkewHost:
    """Move this host's clock by `seconds` everywhere BatchOps reads it."""
    real = clock.utcnow

    def skew(seconds: float) -> None:
        def skewed() -> datetime:
            return real() + timedelta(seconds=seconds)

        for module in list(sys.modules.values()):
            name = getattr(module, "__name__", "") or ""
            if name.startswith("batchops_") and getattr(module, "utcnow", None) is real:
                monkeypatch.setattr(module, "utcnow", skewed)

    return skew


async def _now(db: Database) -> datetime:
    async with db.unit() as session:
        return await db_now(session)


async def _running_run(db: Database, *, worker: str, beat_ago: float) -> tuple[int, int]:
    """A processing upload whose run on `worker` last beat `beat_ago` s ago, database time."""
    async with db.unit() as session:
        when = await db_now(session) - timedelta(seconds=beat_ago)
        upload = Upload(
            filename="marks.csv",
            sha256="0" * 64,
            status=UploadStatus.PROCESSING,
            attempt=1,
            created_at=when,
            updated_at=when,
        )
        session.add(upload)
        await session.flush()
        run = JobRun(
            kind=RunKind.PIPELINE,
            task="process_upload",
            upload_id=upload.id,
            status=RunStatus.RUNNING,
            worker=worker,
            started_at=when,
            heartbeat_at=when,
        )
        session.add(run)
        session.add(
            WorkerHeartbeat(
                name=worker, host="x", pid=1, started_at=when, heartbeat_at=when, jobs_running=1
            )
        )
        await session.flush()
        return upload.id, run.id


async def test_db_now_is_aware_utc_and_the_skew_is_measured(
    db: Database, skew_host: SkewHost
) -> None:
    before = clock.utcnow()
    now = await _now(db)
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert abs((now - before).total_seconds()) < 2
    skew_host(AHEAD)
    async with db.unit() as session:
        skew = await measure_skew(session)
    assert skew.seconds == pytest.approx(AHEAD, abs=1.0)
    assert skew.exceeds(5) and not skew.exceeds(AHEAD + 5)
    assert re.fullmatch(r"h's clock is (89|90)\.\d s ahead of the database's", skew.describe("h"))


async def test_a_host_ahead_does_not_sweep_a_live_run_of_another_host(
    db: Database, db_settings: Settings, skew_host: SkewHost
) -> None:
    settings = db_settings  # stale_after_seconds 60, health_interval 30
    live_upload, live_run = await _running_run(db, worker=OTHER, beat_ago=2)
    _, dead_run = await _running_run(db, worker="daemon@gone-host:7:00c0ffee", beat_ago=120)
    skew_host(AHEAD)

    report = await sweep_once(db, settings)
    judge = LivenessJudge(settings)  # no Redis: another host's worker is judged by time
    try:
        daemon_pass = await sweep_once(db, settings, state=SweepState(judge=judge))
    finally:
        await judge.close()

    assert report.lost_runs == [dead_run], "only the run silent for 120 s (database time)"
    assert live_run not in daemon_pass.lost_runs
    async with db.unit() as session:
        run = await session.get(JobRun, live_run)
        upload = await session.get(Upload, live_upload)
        workers = {w.name: w for w in await list_workers(session, settings)}
    assert run is not None and run.status is RunStatus.RUNNING
    assert upload is not None and upload.status is UploadStatus.PROCESSING
    assert workers[OTHER].alive
    health = await worker_health(db, settings)
    assert health.healthy and OTHER in health.detail


async def test_heartbeats_of_a_skewed_host_are_written_in_database_time(
    db: Database, db_settings: Settings, skew_host: SkewHost, caplog: pytest.LogCaptureFixture
) -> None:
    skew_host(AHEAD)
    beat = Heartbeat(db, db_settings, "daemon@fast-host:9:12ab34cd")
    with caplog.at_level(logging.WARNING, logger="batchops_core.worker.heartbeat"):
        await beat.beat()
        await beat.beat()
    now = await _now(db)
    async with db.unit() as session:
        row = await session.get(WorkerHeartbeat, beat.name)
    assert row is not None and abs((row.heartbeat_at - now).total_seconds()) < 5
    assert beat.skew is not None and beat.skew.seconds == pytest.approx(AHEAD, abs=1.0)
    warnings = [r.getMessage() for r in caplog.records if "clock" in r.getMessage()]
    assert len(warnings) == 2, "one warning on each beat while skewed"
    assert re.search(r"fast-host's clock is (89|90)\.\d s ahead", warnings[0])
    assert "NTP" in warnings[0]


async def _schedule(db: Database, *, due_in: float) -> int:
    async with db.unit() as session:
        await session.execute(update(Job).values(enabled=False))  # the seeds become due too
        job = Job(
            name=f"due-in-{due_in:g}",
            task="noop",
            arguments={},
            cron="0 0 1 1 *",
            timezone="UTC",
            enabled=True,
            next_run_at=await db_now(session) + timedelta(seconds=due_in),
        )
        session.add(job)
        await session.flush()
        return job.id


async def test_a_host_ahead_does_not_fire_a_schedule_early(
    db: Database, db_settings: Settings, skew_host: SkewHost
) -> None:
    job_id = await _schedule(db, due_in=60)
    skew_host(AHEAD)
    claimed = await claim_due_firings(db)
    dispatcher = Dispatcher(db, db_settings)
    try:
        report = await dispatch_due(db, dispatcher)
        await dispatcher.wait_idle()
    finally:
        await dispatcher.close()
    assert job_id not in [f.job_id for f, _ in claimed]
    assert job_id not in [j for j, _ in report.enqueued]
    async with db.unit() as session:
        runs = (await session.scalars(select(JobRun.id).where(JobRun.job_id == job_id))).all()
    assert runs == []


async def test_a_host_behind_fires_a_due_schedule_on_time(
    db: Database, db_settings: Settings, skew_host: SkewHost
) -> None:
    job_id = await _schedule(db, due_in=-30)
    skew_host(-AHEAD)
    claimed = await claim_due_firings(db)
    assert [f.job_id for f, _ in claimed] == [job_id]
    assert claimed[0][0].lateness_seconds == pytest.approx(30, abs=5)


def test_doctor_and_status_report_the_skew(
    cli_env: pytest.MonkeyPatch,
    skew_host: SkewHost,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "data" / "storage").mkdir(parents=True)
    assert main(["doctor"]) == 0, "a skewed clock warns; it does not fail the deployment"
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.split()[1] == "clock"]
    assert line.startswith("ok") and "within" in line
    skew_host(AHEAD)
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.split()[1] == "clock"]
    assert line.startswith("warn") and "s ahead of the database's" in line
    assert "NTP" in line and "timesyncd" in line
    assert "none alive on any host" in out

    assert main(["status"]) == 0
    captured = capsys.readouterr()
    assert "s ahead of the database's" in captured.err and "chrony" in captured.err
    assert main(["status", "--json"]) == 0
    assert '"skewed": true' in capsys.readouterr().out
