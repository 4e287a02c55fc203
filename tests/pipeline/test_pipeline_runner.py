"""The runner and intake against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from batchops_core.accounts import UserInfo
from batchops_core.enums import Role, RunStatus, Stage, StepStatus, UploadStatus
from batchops_core.infra import events
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Incident, JobRun, JobRunStep, Upload
from batchops_core.permissions import Actor
from batchops_core.pipeline import runner
from batchops_core.pipeline.runner import run_upload
from batchops_core.services.uploads import IntakeRejected, get_upload, intake_file, list_uploads

GRADEBOOK = "Student ID,class,maths,english\n" + "".join(
    f"S{i:03d},9{'AB'[i % 2]},{40 + i},{60 + i % 30}\n" for i in range(1, 41)
)


@pytest.fixture
def user() -> Actor:
    """A script's actor (no account row): creating accounts costs an argon2 hash each."""
    return Actor(id=None, username="cli", role=Role.USER)


def put(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / "outside" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


async def steps_of(db: Database, run_id: int) -> list[JobRunStep]:
    async with db.unit() as session:
        return list(
            (
                await session.scalars(
                    select(JobRunStep)
                    .where(JobRunStep.run_id == run_id)
                    .order_by(JobRunStep.position)
                )
            ).all()
        )


async def upload_row(db: Database, upload_id: int) -> Upload:
    async with db.unit() as session:
        row = await session.get(Upload, upload_id)
        assert row is not None
        return row


@pytest.fixture(params=["one call", "stage by stage"])
def calls(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways the runner drives the pool: a small upload's stages in one call (these files
    are small), or one call per stage (what larger files and PDFs take)."""
    if request.param == "stage by stage":
        monkeypatch.setattr(runner, "ONE_CALL_MAX_BYTES", 0)
    return str(request.param)


async def test_intake_then_run_publishes_and_records_every_step(
    db: Database,
    db_settings: Settings,
    users: dict[Role, UserInfo],
    tmp_path: Path,
    calls: str,
) -> None:
    user = users[Role.USER].actor
    source = put(tmp_path, "grades 9.csv", GRADEBOOK)
    info = await intake_file(db, db_settings, user, source, source="exams")
    assert info.status == UploadStatus.QUEUED and info.source == "Exams"
    key = (await upload_row(db, info.id)).stored_path
    assert key.startswith("uploads/") and key.endswith("/grades 9.csv"), "a key, not a path"
    assert (db_settings.storage_path / key).read_bytes() == source.read_bytes()
    assert info.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    async with events.subscribe(db_settings) as queue:
        outcome = await run_upload(db, db_settings, info.id, worker="w1")
        seen = [queue.get_nowait() for _ in range(queue.qsize())]
    assert outcome.succeeded and outcome.status == "published"
    row = await upload_row(db, info.id)
    assert (row.status, row.rows_in, row.rows_out, row.attempt) == (
        UploadStatus.PUBLISHED,
        40,
        40,
        1,
    )
    assert row.report_csv == f"exports/{info.id}/grades_9_report.csv"
    assert (db_settings.storage_path / (row.report_pdf or "")).is_file()
    assert row.published_at is not None
    assert not (db_settings.scratch_path / "work" / str(info.id)).exists(), "scratch cleared"
    assert row.summary and row.summary["rows"] == 40 and "maths" in row.summary["numeric"]
    assert ["Uploaded by", "user1"] in row.summary["metadata"]
    steps = await steps_of(db, outcome.run_id or 0)
    assert [s.stage for s in steps] == list(Stage)
    assert all(s.status == StepStatus.SUCCEEDED and s.duration_ms is not None for s in steps)
    starts = [s.started_at for s in steps]
    assert all(starts) and starts == sorted(starts), "each step starts when it ran"  # type: ignore[type-var]
    assert "encoding: utf-8" in steps[0].log and "delimiter: comma" in steps[0].log
    assert any(line.startswith("schema: student_id=text") for line in steps[0].log)
    stages = [e.stage for e in seen if e.type == "upload.updated" and e.id == info.id]
    assert stages[-6:] == [
        "standardize",
        "validate",
        "transform",
        "summarize",
        "publish",
        "publish",
    ]
    assert seen[-1].type == "run.updated" and seen[-1].status == "succeeded"


async def test_a_second_run_finds_nothing_to_claim(
    db: Database, db_settings: Settings, user: Any, tmp_path: Path
) -> None:
    info = await intake_file(db, db_settings, user, put(tmp_path, "g.csv", GRADEBOOK))
    first, second = await asyncio.gather(
        run_upload(db, db_settings, info.id, worker="a"),
        run_upload(db, db_settings, info.id, worker="b"),
    )
    assert sorted([first.claimed, second.claimed]) == [False, True]
    again = await run_upload(db, db_settings, info.id, worker="c")
    assert not again.claimed and again.succeeded
    async with db.unit() as session:
        runs = (await session.scalars(select(JobRun).where(JobRun.upload_id == info.id))).all()
    assert len(runs) == 1 and (await upload_row(db, info.id)).attempt == 1


async def test_a_run_that_lost_the_upload_never_publishes(
    db: Database,
    db_settings: Settings,
    user: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    calls: str,
) -> None:
    info = await intake_file(db, db_settings, user, put(tmp_path, "g.csv", GRADEBOOK))

    async def steal() -> None:  # meanwhile another worker takes the upload over
        async with db.unit() as session:
            await session.execute(
                update(Upload).where(Upload.id == info.id).values(attempt=Upload.attempt + 1)
            )

    one_stage, all_stages = runner.run_stage_isolated, runner.run_stages_isolated

    async def stolen_during_transform(stage: Stage, ctx: Any, limits: Any) -> Any:
        result = await one_stage(stage, ctx, limits)
        if stage == Stage.TRANSFORM:
            await steal()
        return result

    async def stolen_during_the_call(stages: Any, ctx: Any, limits: Any) -> Any:
        result = await all_stages(stages, ctx, limits)
        await steal()
        return result

    monkeypatch.setattr(runner, "run_stage_isolated", stolen_during_transform)
    monkeypatch.setattr(runner, "run_stages_isolated", stolen_during_the_call)
    outcome = await run_upload(db, db_settings, info.id, worker="slow")
    assert outcome.status == "superseded" and not outcome.succeeded
    row = await upload_row(db, info.id)
    assert row.status == UploadStatus.PROCESSING and row.report_csv is None
    assert not (db_settings.storage_path / "exports" / str(info.id)).exists(), "nothing stored"
    async with db.unit() as session:
        run = await session.get(JobRun, outcome.run_id)
    assert run is not None and run.status == RunStatus.CANCELLED


async def test_stage_failure_becomes_an_incident_with_the_known_error(
    db: Database, db_settings: Settings, user: Any, tmp_path: Path, calls: str
) -> None:
    info = await intake_file(
        db, db_settings, user, put(tmp_path, "roll.csv", "Roll Code,maths\nR1,5\n"), source="Exams"
    )
    outcome = await run_upload(db, db_settings, info.id, worker="w")
    assert (outcome.status, outcome.stage, outcome.error_code) == (
        "failed",
        "validate",
        "MISSING_COLUMN",
    )
    row = await upload_row(db, info.id)
    assert row.status == UploadStatus.FAILED and "student_id" in (row.error_message or "")
    assert (
        row.report_csv is None
        and not (db_settings.storage_path / "exports" / str(info.id)).exists()
    )
    async with db.unit() as session:
        incident = await session.get(Incident, outcome.incident_id)
        run = await session.get(JobRun, outcome.run_id)
    assert (
        incident is not None and incident.upload_id == info.id and incident.stage == Stage.VALIDATE
    )
    assert incident.known_error_id is not None  # the seeded "identifier under another name"
    assert run is not None and run.status == RunStatus.FAILED and run.error_code == "MISSING_COLUMN"
    steps = await steps_of(db, run.id)
    assert [s.status for s in steps] == [
        StepStatus.SUCCEEDED,
        StepStatus.FAILED,
        StepStatus.PENDING,
        StepStatus.PENDING,
        StepStatus.PENDING,
    ]
    assert steps[0].duration_ms is not None and steps[0].rows_out == 1 and row.rows_in == 1


async def test_failed_upload_resumes_from_a_stage(
    db: Database, db_settings: Settings, user: Any, tmp_path: Path
) -> None:
    plan = {"group_by": "klass"}
    info = await intake_file(
        db, db_settings, user, put(tmp_path, "g.csv", GRADEBOOK), plan_config=plan
    )
    failed = await run_upload(db, db_settings, info.id, worker="w")
    assert (failed.stage, failed.error_code) == ("transform", "PLAN_INVALID")
    redelivered = await run_upload(db, db_settings, info.id, worker="w")
    assert not redelivered.claimed and redelivered.status == UploadStatus.FAILED
    async with db.unit() as session:
        await session.execute(
            update(Upload)
            .where(Upload.id == info.id)
            .values(process_config={"group_by": "class"}, status=UploadStatus.QUEUED)
        )
    resumed = await run_upload(db, db_settings, info.id, worker="w", from_stage=Stage.TRANSFORM)
    assert resumed.succeeded and resumed.attempt == 2
    steps = await steps_of(db, resumed.run_id or 0)
    assert [s.status for s in steps[:2]] == [StepStatus.SKIPPED, StepStatus.SKIPPED]
    assert "9A" in (db_settings.storage_path / (resumed.report_csv or "")).read_text("utf-8")


async def test_a_resume_on_a_host_without_the_earlier_results_starts_again(
    db: Database, db_settings: Settings, user: Any, tmp_path: Path
) -> None:
    """Another host has none of this host's scratch: it reads the upload from storage and runs
    every stage instead of failing on missing work files."""
    plan = {"group_by": "klass"}
    info = await intake_file(
        db, db_settings, user, put(tmp_path, "g.csv", GRADEBOOK), plan_config=plan
    )
    assert not (await run_upload(db, db_settings, info.id, worker="host-a")).succeeded
    shutil.rmtree(db_settings.scratch_path)
    async with db.unit() as session:
        await session.execute(
            update(Upload)
            .where(Upload.id == info.id)
            .values(process_config={"group_by": "class"}, status=UploadStatus.QUEUED)
        )
    resumed = await run_upload(
        db, db_settings, info.id, worker="host-b", from_stage=Stage.TRANSFORM
    )
    assert resumed.succeeded
    steps = await steps_of(db, resumed.run_id or 0)
    assert all(s.status == StepStatus.SUCCEEDED for s in steps), "every stage ran again"


async def test_duplicate_of_a_published_file_from_the_same_source(
    db: Database, db_settings: Settings, user: Any, tmp_path: Path
) -> None:
    path = put(tmp_path, "g.csv", GRADEBOOK)
    first = await intake_file(db, db_settings, user, path, source="Exams")
    await run_upload(db, db_settings, first.id, worker="w")
    again = await intake_file(db, db_settings, user, path, source="Exams")
    assert again.status == UploadStatus.DUPLICATE and again.duplicate_of_id == first.id
    assert not (await run_upload(db, db_settings, again.id, worker="w")).claimed
    other = await intake_file(db, db_settings, user, path, source="Fees")
    assert other.status == UploadStatus.QUEUED


@pytest.mark.parametrize(
    ("name", "code"),
    [("bad\x07name.csv", "BAD_PATH"), ("../up.csv", "BAD_PATH"), ("missing.csv", "BAD_PATH")],
)
async def test_intake_refuses_bad_paths(
    db: Database, db_settings: Settings, user: Any, tmp_path: Path, name: str, code: str
) -> None:
    target = tmp_path / "outside" / "sub" / name
    if name != "missing.csv":
        target.parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "outside" / "sub" / Path(name).name).write_text(GRADEBOOK)
    with pytest.raises(IntakeRejected) as err:
        await intake_file(db, db_settings, user, target)
    assert err.value.code == code
    uploads = db_settings.storage_path / "uploads"
    assert not uploads.exists() or [p.name for p in uploads.iterdir()] in ([], [".incoming"])
    async with db.unit() as session:
        assert (await list_uploads(session, actor=user)).total == 0


async def test_intake_refuses_oversize_and_bad_plans(
    db: Database, db_settings: Settings, user: Any, tmp_path: Path
) -> None:
    import dataclasses

    small = dataclasses.replace(
        db_settings, pipeline=dataclasses.replace(db_settings.pipeline, max_upload_mb=1)
    )
    big = put(tmp_path, "big.csv", "student_id,score\n" + "S1,1\n" * 250_000)
    with pytest.raises(IntakeRejected) as err:
        await intake_file(db, small, user, big)
    assert err.value.code == "FILE_TOO_LARGE"
    with pytest.raises(IntakeRejected) as err:
        await intake_file(db, db_settings, user, put(tmp_path, "g.csv", GRADEBOOK), plan_mode="zap")
    assert err.value.code == "PLAN_INVALID" and "process_mode" in str(err.value)


async def test_listing_and_search(
    db: Database, db_settings: Settings, user: Any, tmp_path: Path
) -> None:
    for i in range(3):
        await intake_file(
            db, db_settings, user, put(tmp_path, f"term{i}.csv", GRADEBOOK + f"S9{i},9A,1,1\n")
        )
    async with db.unit() as session:
        page = await list_uploads(session, actor=user, limit=2)
        found = await list_uploads(session, actor=user, search="TERM1")
        one = await get_upload(session, actor=user, upload_id=found.items[0].id)
    assert page.total == 3 and len(page.items) == 2 and page.has_next
    assert [u.filename for u in page.items] == ["term2.csv", "term1.csv"]
    assert one.filename == "term1.csv" and one.as_json()["status"] == "queued"


async def test_wrong_delimiter_is_remediated_automatically(
    db: Database, db_settings: Settings, user: Any, tmp_path: Path
) -> None:
    from batchops_core.worker.context import TaskContext
    from batchops_core.worker.tasks import process_upload

    semi = GRADEBOOK.replace(",", ";")
    info = await intake_file(
        db,
        db_settings,
        user,
        put(tmp_path, "semi.csv", semi),
        plan_config={"read_options": {"delimiter": ","}},
    )
    result = await process_upload(TaskContext(db=db, settings=db_settings, worker="t"), info.id)
    assert result["error_code"] == "CSV_SINGLE_COLUMN", result
    row = await upload_row(db, info.id)
    assert row.status == UploadStatus.PUBLISHED
    assert row.process_config["read_options"]["delimiter"] == ";"


async def test_custom_plan_note_is_stored_on_the_run(
    db: Database, db_settings: Settings, user: Any, tmp_path: Path
) -> None:
    path = put(tmp_path, "g.csv", GRADEBOOK)
    plan = {"instruction": "send to the principal before Friday"}
    info = await intake_file(db, db_settings, user, path, plan_mode="custom", plan_config=plan)
    outcome = await run_upload(db, db_settings, info.id, worker="w")
    async with db.unit() as session:
        run = await session.get(JobRun, outcome.run_id)
    assert run is not None and run.result is not None
    assert run.result["instruction"] == "send to the principal before Friday"
    assert run.result["status"] == "published" and outcome.succeeded


async def test_pool_work_does_not_block_the_event_loop() -> None:
    import time

    from batchops_core.pipeline.pool import run_in_pool, warm_up

    await warm_up()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    await run_in_pool(time.sleep, 0.6)  # blocking work, as pandas or pdfplumber would be
    task.cancel()
    assert ticks >= 10  # a blocked loop would not have ticked at all


async def test_departments_for_the_intake_form(db: Database, user: Any) -> None:
    from batchops_core.services.uploads import list_departments

    async with db.unit() as session:
        names = [d.name for d in await list_departments(session, actor=user)]
    assert names == ["Admissions", "Attendance", "Exams", "Fees", "Library"]
