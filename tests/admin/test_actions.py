"""Cancel, process again, delete a schedule, send a report, automation incidents that close
themselves, fetch_url de-duplication — against the real databases, runner and SMTP server."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from batchops_core.accounts import UserInfo
from batchops_core.enums import (
    IncidentStatus,
    Role,
    RunStatus,
    Stage,
    StepStatus,
    UploadStatus,
)
from batchops_core.errors import NotFound, PermissionDenied, ValidationFailed
from batchops_core.incidents import InvalidTransition
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database, open_database
from batchops_core.models import Incident, IncidentEvent, Job, JobRun, JobRunStep, Upload
from batchops_core.permissions import SYSTEM
from batchops_core.pipeline import runner
from batchops_core.pipeline.runner import run_upload
from batchops_core.services.actions import (
    cancel_run,
    cancel_upload,
    delete_schedule,
    process_again,
)
from batchops_core.services.departments import set_user_department
from batchops_core.services.distribute import send_report
from batchops_core.services.schedules import create_schedule
from batchops_core.services.uploads import intake_file
from batchops_core.worker.automation import frame
from batchops_core.worker.automation.frame import Outcome, run_automation
from batchops_core.worker.automation.registry import AUTOMATIONS, TaskSpec
from batchops_core.worker.context import TaskContext
from tests.admin.conftest import GRADEBOOK, MailServer, put, smtp_settings, wait_for

Users = dict[Role, UserInfo]


async def _upload(db: Database, upload_id: int) -> Upload:
    async with db.unit() as uow:
        row = await uow.get(Upload, upload_id)
        assert row is not None
        return row


async def test_cancel_a_queued_upload(
    db: Database, db_settings: Settings, users: Users, tmp_path: Path
) -> None:
    owner = users[Role.USER].actor
    info = await intake_file(db, db_settings, owner, put(tmp_path, "a.csv", GRADEBOOK))
    async with db.unit() as uow:
        done = await cancel_upload(uow, actor=owner, upload_id=info.id, reason="wrong file")
    assert done.was == "queued" and done.run_id is None
    outcome = await run_upload(db, db_settings, info.id, worker="w1")
    assert outcome.claimed is False, "a cancelled upload is never claimed"
    row = await _upload(db, info.id)
    assert row.status is UploadStatus.CANCELLED and "wrong file" in (row.error_message or "")
    async with db.unit() as uow:
        with pytest.raises(InvalidTransition, match="only a queued or processing"):
            await cancel_upload(uow, actor=owner, upload_id=info.id)


async def test_users_cancel_only_their_own_uploads(
    db: Database, db_settings: Settings, users: Users, tmp_path: Path
) -> None:
    mine = await intake_file(
        db, db_settings, users[Role.MODERATOR].actor, put(tmp_path, "m.csv", GRADEBOOK)
    )
    async with db.unit() as uow:
        with pytest.raises(PermissionDenied, match="only their own"):
            await cancel_upload(uow, actor=users[Role.USER].actor, upload_id=mine.id)
    async with db.unit() as uow:
        with pytest.raises(NotFound):
            await cancel_upload(uow, actor=users[Role.USER].actor, upload_id=9999)


async def test_cancel_a_processing_upload_stops_at_the_next_stage_boundary(
    db: Database,
    db_settings: Settings,
    users: Users,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reached, go = asyncio.Event(), asyncio.Event()
    real = runner.run_stage_isolated

    async def gated(stage: Stage, ctx: Any, limits: Any) -> Any:
        if stage is Stage.VALIDATE:
            reached.set()
            await go.wait()
        return await real(stage, ctx, limits)

    monkeypatch.setattr(runner, "run_stage_isolated", gated)
    monkeypatch.setattr(runner, "ONE_CALL_MAX_BYTES", 0)  # stage by stage, as a larger file runs
    info = await intake_file(
        db, db_settings, users[Role.USER].actor, put(tmp_path, "b.csv", GRADEBOOK), source="Exams"
    )
    running = asyncio.create_task(run_upload(db, db_settings, info.id, worker="w1"))
    await asyncio.wait_for(reached.wait(), 30)
    async with db.unit() as uow:
        done = await cancel_upload(uow, actor=users[Role.MODERATOR].actor, upload_id=info.id)
    assert done.was == "processing" and done.run_id is not None
    go.set()
    outcome = await asyncio.wait_for(running, 60)
    assert outcome.succeeded is False and outcome.error_code == runner.SUPERSEDED
    row = await _upload(db, info.id)
    assert row.status is UploadStatus.CANCELLED and row.report_csv is None
    async with db.unit() as uow:
        run = await uow.get(JobRun, done.run_id)
        steps = dict((await uow.execute(select(JobRunStep.stage, JobRunStep.status))).all())
    assert run is not None and run.status is RunStatus.CANCELLED and run.error_code == "CANCELLED"
    assert steps[Stage.STANDARDIZE] is StepStatus.SUCCEEDED
    assert steps[Stage.PUBLISH] is StepStatus.SKIPPED
    assert not (db_settings.storage_path / "exports" / str(info.id)).exists()


async def test_process_again_with_another_plan_forces_a_duplicate(
    db: Database, db_settings: Settings, users: Users, tmp_path: Path
) -> None:
    user = users[Role.USER].actor
    path = put(tmp_path, "grades 9.csv", GRADEBOOK)
    first = await intake_file(db, db_settings, user, path, source="Exams")
    assert (await run_upload(db, db_settings, first.id, worker="w1")).succeeded
    twin = await intake_file(db, db_settings, user, path, source="Exams")
    assert twin.status is UploadStatus.DUPLICATE
    plan = {"group_by": "class"}
    again = await process_again(
        db, None, actor=user, upload_id=twin.id, plan_mode="transform", plan_config=plan
    )
    assert again.status is UploadStatus.QUEUED and again.filename == "grades 9.csv"
    assert again.source == "Exams" and again.sha256 == first.sha256
    outcome = await run_upload(db, db_settings, again.id, worker="w1")
    assert outcome.succeeded, outcome.error_message
    row = await _upload(db, again.id)
    assert row.process_config == plan and row.summary and row.summary.get("output") == "summary"
    assert not list((db_settings.scratch_path / "again").iterdir()), "its scratch copy is gone"


async def test_process_again_refuses_unfinished_work(
    db: Database, db_settings: Settings, users: Users, tmp_path: Path
) -> None:
    user = users[Role.USER].actor
    info = await intake_file(db, db_settings, user, put(tmp_path, "c.csv", GRADEBOOK))
    with pytest.raises(InvalidTransition, match="still queued"):
        await process_again(db, None, actor=user, upload_id=info.id)


async def test_delete_a_schedule_keeps_its_runs(db: Database, users: Users) -> None:
    admin = users[Role.ADMIN].actor
    async with db.unit() as uow:
        made = await create_schedule(
            uow, actor=admin, name="Probe", task="noop", cron="*/5 * * * *"
        )
        uow.add(JobRun(kind="automation", task="noop", job_id=made.id, status=RunStatus.SUCCEEDED))
    async with db.unit() as uow:
        with pytest.raises(PermissionDenied):
            await delete_schedule(uow, actor=users[Role.MODERATOR].actor, ref="probe")
    async with db.unit() as uow:
        assert await delete_schedule(uow, actor=admin, ref="probe") == "Probe"
    async with db.unit() as uow:
        assert await uow.get(Job, made.id) is None
        kept = (await uow.scalars(select(JobRun.job_id).where(JobRun.task == "noop"))).all()
    assert kept == [None]


async def test_send_a_report_to_the_department_and_its_staff(
    db_settings: Settings, users: Users, tmp_path: Path
) -> None:
    with MailServer() as server:
        settings = smtp_settings(db_settings, server)
        db = open_database(settings)
        try:
            async with db.unit() as uow:
                await set_user_department(
                    uow, actor=SYSTEM, username="moderator1", department="Exams"
                )
            path = put(tmp_path, "grades.csv", GRADEBOOK)
            info = await intake_file(db, settings, users[Role.USER].actor, path, source="Exams")
            assert (await run_upload(db, settings, info.id, worker="w1")).succeeded
            with pytest.raises(PermissionDenied):
                await send_report(db, actor=users[Role.USER].actor, upload_id=info.id)
            sent = await send_report(db, actor=users[Role.MODERATOR].actor, upload_id=info.id)
            assert sent.recipients == ["exams@school.example", "moderator1@school.example"]
            [message] = server.wait_for(1)
            names = sorted(p.get_filename() for p in message.message.iter_attachments())
            assert names == ["grades_report.csv", "grades_report.pdf"]
            csv_part = next(
                p for p in message.message.iter_attachments() if p.get_filename().endswith("csv")
            )
            report = db_settings.storage_path / ((await _upload(db, info.id)).report_csv or "")
            assert csv_part.get_payload(decode=True) == report.read_bytes()
            assert set(message.recipients) == set(sent.recipients)
            with pytest.raises(ValidationFailed, match="not a valid email"):
                await send_report(db, actor=SYSTEM, upload_id=info.id, to=["nobody"])
        finally:
            await db.dispose()


async def test_cancel_a_running_automation_stops_its_body(
    db: Database, db_settings: Settings, users: Users, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, stopped = asyncio.Event(), asyncio.Event()

    async def slow_probe(run: frame.AutomationRun) -> Outcome:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()
        raise AssertionError("unreachable")

    monkeypatch.setitem(AUTOMATIONS, "slow_probe", TaskSpec("slow_probe", "test", (), slow_probe))
    monkeypatch.setattr(frame, "CANCEL_POLL_SECONDS", 0.05)
    ctx = TaskContext(db=db, settings=db_settings, worker="test@host:1")
    task = asyncio.create_task(run_automation(ctx, "slow_probe", (), {}))
    await asyncio.wait_for(started.wait(), 30)

    async def running_id() -> int | None:
        async with db.unit() as uow:
            return await uow.scalar(select(JobRun.id).where(JobRun.task == "slow_probe"))

    run_id = await wait_for(running_id)
    async with db.unit() as uow:
        with pytest.raises(PermissionDenied):
            await cancel_run(uow, actor=users[Role.USER].actor, run_id=run_id)
    async with db.unit() as uow:
        done = await cancel_run(uow, actor=users[Role.MODERATOR].actor, run_id=run_id)
    assert done.was == "running"
    result = await asyncio.wait_for(task, 30)
    assert result["status"] == "cancelled" and stopped.is_set()
    async with db.unit() as uow:
        run = await uow.get(JobRun, run_id)
        incidents = (await uow.scalars(select(Incident.id))).all()
    assert run is not None and run.status is RunStatus.CANCELLED and incidents == []


async def test_automation_incident_resolves_itself_when_the_schedule_succeeds(
    db: Database, db_settings: Settings, users: Users
) -> None:
    admin = users[Role.ADMIN].actor
    async with db.unit() as uow:
        jobs = [
            await create_schedule(
                uow,
                actor=admin,
                name=f"Ingest {name} test",
                task="ingest_department",
                cron="0 6 * * *",
                arguments={"department": name},
            )
            for name in ("Fees", "Exams")
        ]
    ctx = TaskContext(db=db, settings=db_settings, worker="test@host:1")
    gone, fees, exams = {"department": "Gone"}, {"department": "Fees"}, {"department": "Exams"}
    # schedule A fails (its department went away meanwhile)
    failed = await run_automation(ctx, "ingest_department", (), gone, job_id=jobs[0].id)
    assert failed["status"] == "failed"
    # another schedule of the same task succeeding says nothing about A's problem
    other = await run_automation(ctx, "ingest_department", (), exams, job_id=jobs[1].id)
    assert other["status"] in ("succeeded", "skipped")
    async with db.unit() as uow:
        still = await uow.get(Incident, failed["incident_id"])
        assert still is not None and still.status is IncidentStatus.OPEN
    # A's next run succeeds: its incident closes itself
    ok = await run_automation(ctx, "ingest_department", (), fees, job_id=jobs[0].id)
    assert ok["status"] in ("succeeded", "skipped")
    async with db.unit() as uow:
        first = await uow.get(Incident, failed["incident_id"])
        assert first is not None
        kinds = (
            await uow.scalars(
                select(IncidentEvent.kind).where(IncidentEvent.incident_id == first.id)
            )
        ).all()
    assert first.status is IncidentStatus.RESOLVED and first.resolved_at is not None
    assert f"run #{ok['run_id']}" in first.corrective_action and "auto_resolved" in kinds


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


async def test_fetch_url_does_not_publish_an_unchanged_file_again(
    db: Database, db_settings: Settings, http_root: tuple[str, Path]
) -> None:
    base, root = http_root
    (root / "fees.csv").write_text(GRADEBOOK)
    ctx = TaskContext(db=db, settings=db_settings, worker="test@host:1")
    url = f"{base}/fees.csv"
    first = await run_automation(ctx, "fetch_url", (url,), {"department": "Fees"})
    assert (await run_upload(db, db_settings, first["upload_id"], worker="w1")).succeeded
    second = await run_automation(ctx, "fetch_url", (url,), {"department": "Fees"})
    assert second["status"] == "skipped" and second["duplicate_of"] == first["upload_id"]
    assert (await _upload(db, second["upload_id"])).status is UploadStatus.DUPLICATE
    (root / "fees.csv").write_text(GRADEBOOK + "S999,9A,50,60\n")
    third = await run_automation(ctx, "fetch_url", (url,), {"department": "Fees"})
    assert third["status"] == "succeeded"
    assert (await _upload(db, third["upload_id"])).status is UploadStatus.QUEUED
