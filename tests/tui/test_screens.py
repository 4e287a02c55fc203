"""Each screen renders the seeded data through the real services."""

from __future__ import annotations

import io
from typing import Any

import pytest
from textual.widgets import DataTable, Static

from batchops_core.enums import Role
from batchops_tui.widgets.common.paged_table import PagedTable
from tests.tui.conftest import settle, signed_in, wait_for


def text_of(widget: Static) -> str:
    """The plain text a Static shows (Rich renderables included)."""
    from rich.console import Console

    console = Console(width=200, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def rows(app: Any, selector: str = "PagedTable") -> list[list[str]]:
    table = app.screen.query_one(selector, PagedTable).table
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def goto(pilot: Any, key: str, screen: str) -> None:
    await pilot.press(key)
    await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == screen, screen)
    await settle(pilot)


async def test_home_shows_kpis_workers_and_firings(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await signed_in(pilot, Role.ADMIN)
        kpi = lambda name: str(app.screen.query_one(f"#kpi-{name} .kpi-value").render())  # noqa: E731
        assert kpi("today") == "6"  # six uploads seeded within the last six hours
        assert kpi("incidents") == "4"  # open + in progress
        assert kpi("workers") == "1 alive"  # worker-b's heartbeat is stale
        assert kpi("queue") == "1"  # the queued upload
        firings = text_of(app.screen.query_one("#next-firings .card-body", Static))
        assert "Nightly backup" in firings or len(firings.splitlines()) == 5
        assert app.screen.query("#role-cards ListCard").first().border_title == "Users"


@pytest.mark.parametrize(
    ("key", "screen", "expected"),
    [
        ("3", "RunsScreen", "grades-01.csv"),
        ("4", "IssuesScreen", "SCHEMA_MISSING_COLUMN"),
        ("5", "ReportsScreen", "grades-01.csv"),
        ("6", "SchedulesScreen", "Nightly backup"),
    ],
)
async def test_listing_screens_show_seeded_rows(make_app, tui_db, key, screen, expected) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await goto(pilot, key, screen)
        await wait_for(pilot, lambda: any(expected in " ".join(r) for r in rows(app)), expected)


async def test_runs_detail_shows_steps_and_filter_narrows(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await goto(pilot, "3", "RunsScreen")
        assert len(rows(app)) == 12
        await pilot.press("/")
        await pilot.press(*"grades-03", "enter")
        await wait_for(pilot, lambda: len(rows(app)) == 1, "filtered runs")
        await pilot.press("enter")
        await settle(pilot)
        body = text_of(app.screen.query_one("#run-body", Static))
        assert "validate" in body and "failed" in body
        assert app.screen.query_one("#run-detail").has_class("open")


async def test_issues_workspace_shows_known_fields(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await goto(pilot, "4", "IssuesScreen")
        await pilot.press("enter")
        await settle(pilot)
        body = text_of(app.screen.query_one("#workspace-body", Static))
        assert "Timeline" in body and "Ticket" in body


async def test_brackets_in_data_are_text_not_markup(make_app, tui_db) -> None:
    """A file name or message holding `[...]` shows as written and never breaks the screen."""
    from sqlalchemy import update

    from batchops_core.models import Incident

    async with tui_db.unit() as session:
        await session.execute(
            update(Incident).values(
                title="marks [/final].csv: bad",
                message="column [b]score[/b] is empty",
                hint="raise [pipeline].max_upload_mb",
            )
        )
    app = make_app(tui_db, live=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await goto(pilot, "4", "IssuesScreen")
        assert any("marks [/final].csv: bad" in " ".join(row) for row in rows(app))
        await pilot.press("enter")
        await settle(pilot)
        body = text_of(app.screen.query_one("#workspace-body", Static))
        assert "raise [pipeline].max_upload_mb" in body
        assert "column [b]score[/b] is empty" in body


async def test_reports_preview_csv_and_pdf(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await signed_in(pilot, Role.USER)
        await goto(pilot, "5", "ReportsScreen")
        await pilot.press("enter")
        await settle(pilot)
        csv = app.screen.query_one("#csv-preview", DataTable)
        await wait_for(pilot, lambda: csv.row_count == 8, "CSV preview")
        pdf = app.screen.query_one("#pdf-preview", Static)
        await wait_for(pilot, lambda: "BatchOps report" in text_of(pdf), "PDF text")


async def test_help_lists_every_screen_binding(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await signed_in(pilot, Role.ADMIN)
        await pilot.press("question_mark")
        await settle(pilot)
        assert type(app.screen).__name__ == "HelpScreen"
        from batchops_tui.screens.help import bindings_markdown

        text = bindings_markdown()
        for word in ("Rerun failed stage", "Resolve", "Run now", "Export", "Upload", "Force reset"):
            assert word in text


async def test_palette_offers_screens_and_actions(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await goto(pilot, "4", "IssuesScreen")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "go: Runs" in titles and "go: Users" not in titles
        assert "Issues: resolve" in titles and "Issues: assign" in titles


async def test_runs_filter_by_department_and_status(make_app, tui_db) -> None:
    from textual.widgets import Select

    from batchops_core.enums import RunStatus

    app = make_app(tui_db, live=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await signed_in(pilot, Role.USER)
        await goto(pilot, "3", "RunsScreen")
        dept = app.screen.query_one("#f-dept", Select)
        await wait_for(pilot, lambda: len(dept._options) > 2, "departments")
        app.screen.query_one("#f-status", Select).value = RunStatus.FAILED
        await settle(pilot)
        assert len(rows(app)) == 3 and all("failed" in r[1] for r in rows(app))
        dept.value = dept._options[-1][1]  # a department without runs
        await settle(pilot)
        assert rows(app) == []
