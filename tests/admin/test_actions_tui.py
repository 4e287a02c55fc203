"""The everyday actions in the existing screens at 80×24, keyboard only: Intake cancel and
process again, Runs cancel, Reports send to and process again, Schedules delete."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from batchops_core.enums import Role, RunKind, RunStatus, UploadStatus
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database, open_database
from batchops_core.models import Job, JobRun, Upload
from batchops_tui.app import BatchOpsApp
from batchops_tui.widgets.common.paged_table import PagedTable
from tests.admin.conftest import MailServer, smtp_settings
from tests.tui.conftest import settle, signed_in, wait_for
from tests.tui.seed import NOW
from tests.tui.test_actions import choose_row, fill, scalar
from tests.tui.test_screens import goto

SIZE = (80, 24)


async def _store_file(db: Database, upload_id: int, tmp_path: Path) -> None:
    """The seeded uploads have no stored file; give one a real one to process again."""
    key = f"uploads/seeded-{upload_id}/grades.csv"
    path = db.settings.storage_path / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("student_id,class,score\nS1,9A,50\nS2,9B,70\n", encoding="utf-8")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    async with db.unit() as uow:
        await uow.execute(
            update(Upload).where(Upload.id == upload_id).values(stored_path=key, sha256=digest)
        )


async def _confirm(pilot: Any, key: str) -> None:
    await pilot.press(key)
    await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "ConfirmDialog", "confirm")
    await pilot.press("y")
    await settle(pilot)


async def test_intake_cancels_a_queued_upload_and_processes_one_again(
    make_app: Any, tui_db: Database, queued_dispatcher: Any, tmp_path: Path
) -> None:
    await _store_file(tui_db, 1, tmp_path)
    app = make_app(tui_db, dispatcher=queued_dispatcher, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await goto(pilot, "2", "IntakeScreen")
        app.screen.query_one(PagedTable).table.focus()
        await choose_row(pilot, "6")
        await _confirm(pilot, "x")
        status = await scalar(tui_db, select(Upload.status).where(Upload.id == 6))
        assert status is UploadStatus.CANCELLED

        before = await scalar(tui_db, select(func.max(Upload.id)))
        await choose_row(pilot, "1")
        await _confirm(pilot, "a")
        newest = await scalar(tui_db, select(Upload).where(Upload.id > before))
        assert newest is not None and newest.status is UploadStatus.QUEUED
        assert newest.filename == "grades-01.csv" and newest.process_mode.value == "transform"


async def test_runs_cancel_a_running_automation_run(make_app: Any, tui_db: Database) -> None:
    async with tui_db.unit() as uow:
        uow.add(
            JobRun(
                id=99,
                kind=RunKind.AUTOMATION,
                task="run_daily_backup",
                status=RunStatus.RUNNING,
                started_at=NOW,
                created_at=NOW,
            )
        )
    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await goto(pilot, "3", "RunsScreen")
        await choose_row(pilot, "99")
        await pilot.press("enter")
        await settle(pilot)
        await _confirm(pilot, "x")
        status = await scalar(tui_db, select(JobRun.status).where(JobRun.id == 99))
        assert status is RunStatus.CANCELLED


async def test_reports_send_to_and_process_again(
    tui_settings: Settings, tui_db: Database, queued_dispatcher: Any, tmp_path: Path
) -> None:
    await _store_file(tui_db, 1, tmp_path)
    with MailServer() as server:
        settings = smtp_settings(tui_settings, server)
        mail_db = open_database(settings)  # services read [smtp] from their database's settings
        app = BatchOpsApp(
            settings,
            db=mail_db,
            dispatcher=queued_dispatcher,
            clock=lambda: NOW,
            live=False,
        )
        async with app.run_test(size=SIZE) as pilot:
            await signed_in(pilot, Role.MODERATOR)
            await goto(pilot, "5", "ReportsScreen")
            await choose_row(pilot, "1")
            await pilot.press("enter")
            await settle(pilot)
            await pilot.press("m")
            await wait_for(pilot, lambda: type(app.screen).__name__ == "FormDialog", "send form")
            to = app.screen.query_one("#field-to").value  # type: ignore[attr-defined]
            assert to.endswith("@school.example"), "prefilled with the department's contact"
            await fill(pilot, to="not-an-address")
            assert type(app.screen).__name__ == "FormDialog", "a refusal keeps the form open"
            await fill(pilot, to=f"{to}, head@school.example")
            await wait_for(pilot, lambda: len(server.messages) == 1, "the mail")
            [message] = server.messages
            assert set(message.recipients) == {to, "head@school.example"}
            assert len(list(message.message.iter_attachments())) == 2

            before = await scalar(tui_db, select(func.max(Upload.id)))
            await pilot.press("a")
            await wait_for(pilot, lambda: type(app.screen).__name__ == "FormDialog", "again form")
            await fill(pilot, config="{not json")
            assert type(app.screen).__name__ == "FormDialog"
            await fill(pilot, config='{"group_by": "class"}')
            await wait_for(pilot, lambda: type(app.screen).__name__ == "ReportsScreen")
            newest = await scalar(tui_db, select(Upload).where(Upload.id > before))
            assert newest is not None and newest.process_config == {"group_by": "class"}
        await mail_db.dispose()


async def test_schedules_delete(make_app: Any, tui_db: Database) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.ADMIN)
        await goto(pilot, "6", "SchedulesScreen")
        first = await scalar(tui_db, select(func.min(Job.id)))
        await choose_row(pilot, str(first))
        await _confirm(pilot, "x")
        assert await scalar(tui_db, select(Job.id).where(Job.id == first)) is None
