"""Every state-changing action, per role: the keystroke, the confirmation, the database after.

Users (role `user`) must not be offered manage actions: not in the footer, not in the palette,
and the key does nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from textual.widgets import Input, Select, TextArea

from batchops_core.enums import IncidentStatus, Role, UploadStatus
from batchops_core.models import Incident, Job, Upload, User
from tests.tui.conftest import settle, signed_in, wait_for
from tests.tui.test_screens import goto, rows


async def scalar(db: Any, query: Any) -> Any:
    async with db.unit() as session:
        return await session.scalar(query)


async def choose_row(pilot: Any, key: str) -> None:
    from batchops_tui.widgets.common.paged_table import PagedTable

    table = pilot.app.screen.query_one(PagedTable).table
    table.move_cursor(row=table.get_row_index(key))
    await pilot.pause()


async def fill(pilot: Any, **values: str) -> None:
    """Fill a FormDialog's fields by name and submit it."""
    screen = pilot.app.screen
    for name, value in values.items():
        widget = screen.query_one(f"#field-{name}")
        if isinstance(widget, TextArea):
            widget.text = value
        elif isinstance(widget, Select | Input):
            widget.value = value
    await pilot.press("ctrl+s")
    await settle(pilot)


def footer_actions(app: Any) -> set[str]:
    return {b.binding.action for b in app.screen.active_bindings.values() if b.enabled}


async def test_moderator_assigns_analyzes_resolves_archives_reopens(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await goto(pilot, "4", "IssuesScreen")
        me = app.session.user.id
        await choose_row(pilot, "2")
        await pilot.press("a")
        await settle(pilot)
        await fill(pilot, assignee=str(me))
        await wait_for(pilot, lambda: True)
        assert await scalar(tui_db, select(Incident.assignee_id).where(Incident.id == 2)) == me

        await pilot.press("n")
        await settle(pilot)
        await fill(pilot, impact_summary="fees reports late by a day")
        assert await scalar(tui_db, select(Incident.impact_summary).where(Incident.id == 2)) == (
            "fees reports late by a day"
        )

        await pilot.press("v")
        await settle(pilot)
        await fill(pilot)  # both required fields empty: refused inside the form
        assert type(app.screen).__name__ == "FormDialog"
        await fill(pilot, root_cause="template changed", corrective_action="template restored")
        status = await scalar(tui_db, select(Incident.status).where(Incident.id == 2))
        assert status is IncidentStatus.RESOLVED

        await pilot.press("o")
        await settle(pilot)
        await fill(pilot, reason="came back")
        status = await scalar(tui_db, select(Incident.status).where(Incident.id == 2))
        assert status in (IncidentStatus.OPEN, IncidentStatus.IN_PROGRESS)

        await choose_row(pilot, "4")  # resolved in the seed
        await pilot.press("x")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        status = await scalar(tui_db, select(Incident.status).where(Incident.id == 4))
        assert status is IncidentStatus.ARCHIVED


async def test_moderator_retries_an_incident(make_app, tui_db, queued_dispatcher) -> None:
    app = make_app(tui_db, dispatcher=queued_dispatcher, live=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await goto(pilot, "4", "IssuesScreen")
        await choose_row(pilot, "1")  # incident 1 is about failed upload 3
        await pilot.press("t")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert await scalar(tui_db, select(Incident.retry_count).where(Incident.id == 1)) == 1
        status = await scalar(tui_db, select(Upload.status).where(Upload.id == 3))
        assert status is UploadStatus.QUEUED


async def test_user_sees_no_manage_actions_on_issues(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await signed_in(pilot, Role.USER)
        await goto(pilot, "4", "IssuesScreen")
        shown = footer_actions(app)
        for action in ("assign", "analyze", "retry", "resolve", "archive", "reopen"):
            assert action not in shown
        titles = [c.title for c in app.get_system_commands(app.screen)]
        manage = ("assign", "analyze", "retry", "resolve", "archive", "reopen")
        assert not [t for t in titles if t.startswith("Issues: ") and t.split(": ")[1] in manage]
        assert "Issues: filter" in titles
        await choose_row(pilot, "2")
        await pilot.press("v")
        await settle(pilot)
        assert type(app.screen).__name__ == "IssuesScreen"  # no form opened
        await pilot.press("u")
        await settle(pilot)
        assert app.current_mode != "users"


async def test_moderator_reruns_a_failed_pipeline_run(make_app, tui_db, queued_dispatcher) -> None:
    app = make_app(tui_db, dispatcher=queued_dispatcher, live=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await goto(pilot, "3", "RunsScreen")
        await choose_row(pilot, "3")  # failed at validate, upload 3
        await pilot.press("enter")
        await settle(pilot)
        assert "rerun" in footer_actions(app)
        await pilot.press("f")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        status = await scalar(tui_db, select(Upload.status).where(Upload.id == 3))
        assert status is UploadStatus.QUEUED


async def test_user_is_not_offered_pipeline_rerun(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await signed_in(pilot, Role.USER)
        await goto(pilot, "3", "RunsScreen")
        await choose_row(pilot, "3")
        await pilot.press("enter")
        await settle(pilot)
        assert "rerun" not in footer_actions(app)


async def test_admin_disables_a_schedule_and_creates_one(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await signed_in(pilot, Role.ADMIN)
        await goto(pilot, "6", "SchedulesScreen")
        job_id = await scalar(tui_db, select(Job.id).where(Job.name == "Nightly backup"))
        await choose_row(pilot, str(job_id))
        await pilot.press("space")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert await scalar(tui_db, select(Job.enabled).where(Job.id == job_id)) is False

        await pilot.press("c")
        await settle(pilot)
        dialog = app.screen
        dialog.query_one("#s-name", Input).value = "Hourly fees"
        dialog.query_one("#s-task", Select).value = "ingest_all_departments"
        dialog.query_one("#s-cron", Input).value = "61 * * * *"
        await pilot.pause()
        assert dialog.query_one("#cron-preview").has_class("invalid")
        dialog.query_one("#s-cron", Input).value = "5 * * * *"
        await pilot.pause()
        assert not dialog.query_one("#cron-preview").has_class("invalid")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert (
            await scalar(tui_db, select(Job.cron).where(Job.name == "Hourly fees")) == "5 * * * *"
        )


async def test_user_may_run_a_schedule_now_but_not_edit(
    make_app, tui_db, queued_dispatcher
) -> None:
    app = make_app(tui_db, dispatcher=queued_dispatcher, live=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await signed_in(pilot, Role.USER)
        await goto(pilot, "6", "SchedulesScreen")
        shown = footer_actions(app)
        assert "run_now" in shown
        assert not {"create", "edit", "toggle"} & shown
        seen: list[str] = []
        app.notify = lambda message, **kw: seen.append(message)  # type: ignore[method-assign]
        await pilot.press("g")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert any("queued" in m for m in seen), seen


async def test_admin_manages_users(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await signed_in(pilot, Role.ADMIN)
        await pilot.press("u")
        await wait_for(pilot, lambda: app.current_mode == "users", "users screen")
        await settle(pilot)
        await choose_row(pilot, "uma")
        await pilot.press("d")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert await scalar(tui_db, select(User.active).where(User.username == "uma")) is False

        await pilot.press("o")
        await settle(pilot)
        await fill(pilot, role="moderator")
        assert (
            await scalar(tui_db, select(User.role).where(User.username == "uma")) is Role.MODERATOR
        )

        await pilot.press("c")
        await settle(pilot)
        await fill(
            pilot,
            username="boss",
            email="boss@school.example",
            role="admin",
            password="a-long-enough-secret",
        )
        assert await scalar(tui_db, select(User.role).where(User.username == "boss")) is Role.ADMIN

        await pilot.press("l")
        await settle(pilot)
        audit = rows(app, "#audit-table")
        assert any("user.create" in " ".join(r) for r in audit)


async def test_export_copies_the_report(make_app, tui_db, tui_settings) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await signed_in(pilot, Role.USER)
        await goto(pilot, "5", "ReportsScreen")
        await choose_row(pilot, "1")
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("e")
        await settle(pilot)
        await fill(pilot, format="csv", path="")
        exported = tui_settings.export_path / "upload-1.csv"
        await wait_for(pilot, lambda: exported.is_file(), "exported file")
        assert exported.read_text().startswith("student_id")


async def test_user_uploads_a_file_with_a_plan(make_app, tui_db, tui_settings, queued_dispatcher):
    app = make_app(tui_db, dispatcher=queued_dispatcher, live=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await signed_in(pilot, Role.USER)
        await goto(pilot, "2", "IntakeScreen")
        screen = app.screen
        await wait_for(
            pilot, lambda: len(screen.query_one("#intake-department", Select)._options) > 1, "depts"
        )
        path = Path(tui_settings.pipeline.intake_root) / "grades.csv"
        screen.query_one("#intake-path", Input).value = str(path)
        await pilot.click("#intake-path")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.files == [path], "the chosen file")
        screen.query_one("#plan-mode", Select).value = "delete"
        await pilot.pause()
        screen.query_one("#p-rules", TextArea).text = "score lt"  # operator without a value
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert (
            await scalar(tui_db, select(Upload.id).where(Upload.filename == "grades.csv")) is None
        )
        screen.query_one("#p-rules", TextArea).text = "score lt 35"
        await pilot.press("ctrl+s")
        await settle(pilot)
        upload_id = await scalar(tui_db, select(Upload.id).where(Upload.filename == "grades.csv"))
        assert upload_id is not None and upload_id in app.my_uploads
        status = await scalar(tui_db, select(Upload.status).where(Upload.id == upload_id))
        assert status is UploadStatus.QUEUED
        await wait_for(pilot, lambda: rows(app, "#intake-queue")[0][1] == "grades.csv", "queue")
