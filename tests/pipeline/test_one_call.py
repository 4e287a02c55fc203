"""A small upload's stages in one pool call: every step still recorded, a death still pinned on
its stage. The runner tests run both paths on good and bad files; these cover what only the one
call has: the progress file, and a process that dies after some stages finished."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from batchops_core.enums import STAGES, Role, Stage, StepStatus, UploadStatus
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import JobRunStep, Upload
from batchops_core.permissions import Actor
from batchops_core.pipeline import runner
from batchops_core.pipeline.limits import PARSE_CRASHED
from batchops_core.pipeline.pool import get_pool
from batchops_core.pipeline.stages import (
    PROGRESS,
    StageContext,
    StageOutcome,
    read_progress,
    run_stages,
)
from batchops_core.services.uploads import intake_file

GRADEBOOK = "Student ID,class,maths,english\n" + "".join(
    f"S{i:03d},9A,{40 + i},{60 + i % 30}\n" for i in range(1, 21)
)


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    return sqlite_url  # the subject is the pool call, not the database


def test_run_stages_returns_every_outcome_and_leaves_its_progress(
    write: Callable[..., Path], make_ctx: Callable[..., StageContext]
) -> None:
    ctx = make_ctx(write("g.csv", GRADEBOOK), source="Exams")
    result = run_stages(STAGES, ctx)
    assert result.error is None
    assert [o.stage for o in result.outcomes] == [s.value for s in STAGES]
    assert all(o.started_at is not None and o.duration_ms > 0 for o in result.outcomes)
    assert result.outcomes[0].rows_in == 20
    done, running = read_progress(ctx)
    assert running is None
    assert [(o.stage, o.duration_ms, o.started_at) for o in done] == [
        (o.stage, o.duration_ms, o.started_at) for o in result.outcomes
    ]
    assert done[2].data["plan"] == result.outcomes[2].data["plan"]


def test_run_stages_stops_at_a_stage_error_with_the_outcomes_before_it(
    write: Callable[..., Path], make_ctx: Callable[..., StageContext]
) -> None:
    ctx = make_ctx(write("roll.csv", "Roll Code,maths\nR1,5\n"), source="Exams")
    result = run_stages(STAGES, ctx)
    assert [o.stage for o in result.outcomes] == ["standardize"]
    assert result.error is not None and result.error.stage is Stage.VALIDATE
    assert result.error.code == "MISSING_COLUMN"


def test_progress_of_a_process_that_died_mid_stage(
    write: Callable[..., Path], make_ctx: Callable[..., StageContext]
) -> None:
    ctx = make_ctx(write("g.csv", GRADEBOOK))
    ctx.work.mkdir(parents=True)
    done = StageOutcome("standardize", 20, 20, ["read"], {"meta": {}}, 4.5)
    lines = [
        json.dumps({"running": "standardize"}),
        json.dumps({"done": vars(done)}, default=str),
        json.dumps({"running": "validate"}),
        '{"done": {"stage": "valid',  # cut by the death
    ]
    (ctx.work / PROGRESS).write_text("\n".join(lines))
    outcomes, running = read_progress(ctx)
    assert running is Stage.VALIDATE
    assert [(o.stage, o.rows_in, o.log, o.duration_ms) for o in outcomes] == [
        ("standardize", 20, ["read"], 4.5)
    ]
    assert read_progress(dataclasses.replace(ctx, work_dir=str(ctx.work / "none"))) == ([], None)


async def _wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.01)
    return value


async def test_a_death_during_publish_fails_there_after_four_recorded_steps(
    db: Database,
    db_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A file big enough that publish takes a second, run as one call (the size limit raised):
    the process is SIGKILLed once its progress says publish; the upload fails PARSE_CRASHED at
    publish, and the four stages before it are recorded with their timings and row counts."""
    monkeypatch.setattr(runner, "ONE_CALL_MAX_BYTES", 10 * 1024 * 1024)
    rows = 60_000
    settings = dataclasses.replace(
        db_settings, pipeline=dataclasses.replace(db_settings.pipeline, pdf_max_rows=rows)
    )
    source = tmp_path / "outside" / "big.csv"
    source.parent.mkdir()
    source.write_text(
        "Student ID,class,maths,english\n"
        + "".join(f"S{i:05d},9A,{40 + i % 50},{60 + i % 30}\n" for i in range(rows))
    )
    actor = Actor(id=None, username="cli", role=Role.USER)
    info = await intake_file(
        db, settings, actor, source, plan_mode="custom", plan_config={"instruction": "keep"}
    )
    progress = settings.scratch_path / "work" / str(info.id) / PROGRESS
    running = asyncio.create_task(runner.run_upload(db, settings, info.id, worker="w"))

    def in_publish() -> bool:
        try:
            return '{"running": "publish"}' in progress.read_text()
        except OSError:
            return False

    await _wait_for(in_publish, 60, "publish to start")
    label = f"upload {info.id} standardize"
    pid = next(p for p, lb in get_pool().busy().items() if lb == label)
    os.kill(pid, signal.SIGKILL)
    outcome = await asyncio.wait_for(running, 60)
    assert (outcome.status, outcome.stage, outcome.error_code) == (
        "failed",
        "publish",
        PARSE_CRASHED,
    )
    assert "big.csv during publish was killed (SIGKILL" in str(outcome.error_message)
    async with db.unit() as session:
        upload = await session.get(Upload, info.id)
        steps = list(
            await session.scalars(
                select(JobRunStep)
                .where(JobRunStep.run_id == outcome.run_id)
                .order_by(JobRunStep.position)
            )
        )
    assert upload is not None and upload.status is UploadStatus.FAILED
    assert upload.rows_in == rows and upload.report_csv is None
    assert [s.status for s in steps] == [StepStatus.SUCCEEDED] * 4 + [StepStatus.FAILED]
    assert all(s.duration_ms and s.started_at for s in steps[:4])
    assert steps[0].rows_out == rows
