"""An operator's day at 80×24 (#13): refusals that keep the form, Home's warnings and tiles,
columns by priority, a visible filter, actions only where they can succeed, readable summaries,
the fix-list, sign-out, the intake tree, the lock screen."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from textual.widgets import DataTable, Input, Label, Select, Static

from batchops_core.enums import Role
from batchops_core.incidents import InvalidTransition
from batchops_core.models import Job, Upload, User
from batchops_tui.widgets.common.paged_table import PagedTable
from tests.tui.conftest import settle, signed_in, wait_for
from tests.tui.seed import NOW, PASSWORD
from tests.tui.test_actions import choose_row, scalar
from tests.tui.test_keyboard import burst
from tests.tui.test_screens import goto, text_of

SIZE = (80, 24)


def headers(app: Any) -> list[str]:
    table = app.screen.query_one(PagedTable).table
    return [str(c.label) for c in table.columns.values()]


def error_under(app: Any, field_id: str) -> str:
    label = app.screen.query_one(f"#error-{field_id}", Label)
    return str(label.render()) if label.has_class("shown") else ""


async def test_schedule_with_unknown_department_stays_open_with_the_error_beside(
    make_app, tui_db
) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.ADMIN)
        await goto(pilot, "6", "SchedulesScreen")
        await pilot.press("c")
        await settle(pilot)
        dialog = app.screen
        dialog.query_one("#s-name", Input).value = "Nowhere ingest"
        dialog.query_one("#s-task", Select).value = "ingest_department"
        dialog.query_one("#s-cron", Input).value = "5 * * * *"
        dialog.query_one("#s-args", Input).value = '{"department": "Nowhere"}'
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is dialog  # still open, nothing lost
        assert dialog.query_one("#s-name", Input).value == "Nowhere ingest"
        assert "Nowhere" in error_under(app, "s-args")
        assert app.focused is dialog.query_one("#s-args", Input)
        assert await scalar(tui_db, select(Job.id).where(Job.name == "Nowhere ingest")) is None
        dialog.query_one("#s-args", Input).value = ""
        dialog.query_one("#s-task", Select).value = "run_daily_backup"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert type(app.screen).__name__ == "SchedulesScreen"
        assert await scalar(tui_db, select(Job.id).where(Job.name == "Nowhere ingest"))


async def test_user_with_a_bad_email_keeps_the_form(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.ADMIN)
        await pilot.press("u")
        await wait_for(pilot, lambda: app.current_mode == "users", "users")
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        dialog = app.screen
        for name, value in (("username", "newhire"), ("email", "not-an-email")):
            dialog.query_one(f"#field-{name}", Input).value = value
        dialog.query_one("#field-password", Input).value = "a-long-enough-secret"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is dialog
        assert "not a valid email" in error_under(app, "email")
        assert dialog.query_one("#field-username", Input).value == "newhire"
        assert await scalar(tui_db, select(User.id).where(User.username == "newhire")) is None


async def test_export_outside_the_export_folder_keeps_the_form(
    make_app, tui_db, tui_settings, tmp_path
) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.USER)
        await goto(pilot, "5", "ReportsScreen")
        await choose_row(pilot, "1")
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("e")
        await settle(pilot)
        dialog = app.screen
        outside = tmp_path / "elsewhere" / "out.csv"
        dialog.query_one("#field-path", Input).value = str(outside)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is dialog
        assert error_under(app, "path")
        assert dialog.query_one("#field-path", Input).value == str(outside)
        dialog.query_one("#field-path", Input).value = "march.csv"
        await pilot.press("ctrl+s")
        exported = tui_settings.export_path / "march.csv"
        await wait_for(pilot, lambda: exported.is_file(), "exported file")


async def test_home_tiles_show_their_second_line_and_warn_of_overdue_schedules(
    make_app, tui_db
) -> None:
    async with tui_db.unit() as session:
        await session.execute(
            update(Job)
            .where(Job.name == "Nightly backup")
            .values(next_run_at=NOW - timedelta(hours=3))
        )
    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        for kpi in ("mtt", "incidents", "queue"):
            tile = app.screen.query_one(f"#kpi-{kpi}")
            detail = tile.query_one(".kpi-detail", Label)
            assert str(detail.render()), kpi
            assert tile.content_region.contains_region(detail.region), kpi
        assert "MTTR" in str(app.screen.query_one("#kpi-mtt .kpi-detail", Label).render())
        firings = text_of(app.screen.query_one("#next-firings .card-body", Static))
        assert "overdue" in firings and "Nightly backup" in firings
        warnings = app.screen.query_one("#home-warnings", Static)
        assert warnings.display and "overdue" in text_of(warnings)


async def test_columns_at_80_keep_what_the_operator_needs_first(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await goto(pilot, "3", "RunsScreen")
        assert {"took", "rows in→out", "status"} <= set(headers(app))
        assert "dept" not in headers(app)
        await goto(pilot, "6", "SchedulesScreen")
        assert {"on", "last result", "next", "name"} <= set(headers(app))
        line = text_of(app.screen.query_one("#schedule-line", Static))
        assert "'" in line and "at" in line  # task and cron are in the line under the table
    app = make_app(tui_db, live=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await goto(pilot, "6", "SchedulesScreen")
        assert len(headers(app)) == 8


async def test_an_applied_filter_stays_visible(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await goto(pilot, "3", "RunsScreen")
        await pilot.press("slash", *"grades-03", "enter")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        pager = app.screen.query_one(".pager", Label)
        assert "grades-03" in str(pager.render())


async def test_incident_actions_offered_only_where_they_can_succeed(make_app, tui_db) -> None:
    from tests.tui.test_actions import footer_actions

    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await goto(pilot, "4", "IssuesScreen")
        await choose_row(pilot, "4")  # resolved
        await settle(pilot)
        shown = footer_actions(app)
        assert {"archive", "reopen"} <= shown
        assert not {"resolve", "assign", "retry"} & shown
        await choose_row(pilot, "2")  # open
        await settle(pilot)
        shown = footer_actions(app)
        assert "resolve" in shown and "archive" not in shown
        await pilot.press("x")  # archive an open incident: not offered, nothing opens
        await settle(pilot)
        assert type(app.screen).__name__ == "IssuesScreen"


async def test_toast_titles_are_words(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    seen: list[dict[str, Any]] = []
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        app.notify = lambda message, **kw: seen.append({"message": message, **kw})  # type: ignore[method-assign]
        app.report_error(InvalidTransition("incident #4 is resolved; it cannot be resolved."))
    assert seen[0]["title"] == "Not possible now"
    assert seen[0]["message"].startswith("Incident #4")


async def test_report_summary_reads_as_text_and_fixlist_previews_and_exports(
    make_app, tui_db, tmp_path
) -> None:
    key = "exports/1/grades_fixlist.csv"
    fixlist = tui_db.settings.storage_path / key
    fixlist.parent.mkdir(parents=True, exist_ok=True)
    fixlist.write_text("row,column,problem,value\n3,score,not a number,abc\n", encoding="utf-8")
    async with tui_db.unit() as session:
        await session.execute(
            update(Upload)
            .where(Upload.id == 1)
            .values(
                fixlist_csv=key,
                summary={"rows": 8, "columns": {"score": {"type": "number", "missing": 0}}},
            )
        )
    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.USER)
        await goto(pilot, "5", "ReportsScreen")
        await choose_row(pilot, "1")
        await pilot.press("enter")
        await settle(pilot)
        summary = text_of(app.screen.query_one("#report-summary", Static))
        assert "score:" in summary and "{" not in summary and '"' not in summary
        preview = app.screen.query_one("#fixlist-preview", DataTable)
        await wait_for(pilot, lambda: preview.row_count == 1, "fix-list preview")
        for _ in range(3):
            await pilot.press("p")
        assert app.screen.query_one("#report-preview").active == "tab-fixlist"
        await pilot.press("e")
        await settle(pilot)
        app.screen.query_one("#field-format", Select).value = "fixlist"
        await pilot.press("ctrl+s")
        exported = app.settings.export_path / fixlist.name
        await wait_for(pilot, lambda: exported.is_file(), "exported fix-list")


async def test_sign_out_returns_to_sign_in_and_the_next_person_signs_in(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await goto(pilot, "4", "IssuesScreen")
        app.action_sign_out()
        await settle(pilot)
        await pilot.press("y")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "SignInScreen", "sign-in")
        assert app.session is None and app.sub_title == ""
        burst(app, "uma", "tab", PASSWORD, "enter")
        await wait_for(pilot, lambda: app.current_mode == "home", "Home for the next person")
        await settle(pilot)
        assert app.session is not None and app.session.user.username == "uma"
        await goto(pilot, "4", "IssuesScreen")
        from tests.tui.test_actions import footer_actions

        assert "resolve" not in footer_actions(app)  # a fresh screen for the user's role


async def test_intake_tree_hides_dot_files_and_goes_up(make_app, tui_db, tui_settings) -> None:
    root = Path(tui_settings.pipeline.intake_root)
    (root / ".secret").write_text("x", encoding="utf-8")
    (root / ".cache").mkdir()
    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.USER)
        await goto(pilot, "2", "IntakeScreen")
        tree = app.screen.query_one("#intake-tree")
        await wait_for(pilot, lambda: len(tree.root.children) > 0, "tree loaded")
        names = {str(n.label) for n in tree.root.children}
        assert "grades.csv" in names and not {".secret", ".cache"} & names
        tree.focus()
        await pilot.press("backspace")
        await settle(pilot)
        assert Path(tree.path) == root.resolve().parent
        app.screen.query_one("#intake-path", Input).value = str(root)
        await pilot.click("#intake-path")
        await pilot.press("enter")
        await wait_for(pilot, lambda: Path(tree.path) == root.resolve(), "re-rooted")


async def test_plan_fields_reset_after_an_upload(
    make_app, tui_db, tui_settings, queued_dispatcher
) -> None:
    app = make_app(tui_db, dispatcher=queued_dispatcher, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.USER)
        await goto(pilot, "2", "IntakeScreen")
        screen = app.screen
        screen.files.append(Path(tui_settings.pipeline.intake_root) / "grades.csv")
        screen.query_one("#p-group_by", Input).value = "class"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert await scalar(tui_db, select(Upload.id).where(Upload.filename == "grades.csv"))
        assert screen.query_one("#p-group_by", Input).value == ""
        assert str(screen.query_one("#plan-mode", Select).value) == "transform"


async def test_lock_screen_is_opaque_and_the_palette_is_off(make_app, tui_db) -> None:
    from textual.command import CommandPalette

    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await pilot.press("ctrl+l")
        await settle(pilot)
        lock = app.screen
        assert type(lock).__name__ == "LockScreen"
        assert lock.styles.background.a == 1.0
        await pilot.press("ctrl+p")
        await settle(pilot)
        assert not CommandPalette.is_open(app)
        assert app.check_action("command_palette", ()) is False


async def test_reset_password_dialog_fits_80x24(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("f3")
        await settle(pilot)
        dialog = app.screen
        assert app.focused is dialog.query_one("#who", Input)
        box = dialog.query_one("#flow-box")
        assert dialog.region.contains_region(box.region)
        for wid in ("#new-password2", "#finish", "#close"):
            assert box.region.contains_region(dialog.query_one(wid).region), wid
