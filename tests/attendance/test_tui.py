"""The Attendance screen (key 8) with a pilot at 80×24: the grid coloured by status with totals,
the day detail, a manual punch through its form and the approval queue, roles, the shift editor;
and one snapshot at 80×24."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from textual.widgets import DataTable, Input, Select, Static

from batchops_core.attendance import calendar, days, employees
from batchops_core.attendance.models import Punch
from batchops_core.attendance.punches import add_punches
from batchops_core.enums import Role
from batchops_core.infra.config import Settings
from batchops_core.infra.db import open_database
from batchops_core.permissions import SYSTEM
from batchops_tui.app import BatchOpsApp
from tests.tui.conftest import (  # noqa: F401 (fixtures)
    _no_blink,
    make_app,
    seeded,
    settle,
    signed_in,
    tui_db,
    tui_settings,
    wait_for,
)
from tests.tui.seed import NOW


async def _seed_attendance(settings: Settings) -> None:
    db = open_database(settings)
    try:
        async with db.unit() as uow:
            await calendar.add_shift(uow, actor=SYSTEM, name="Day", start="09:00", end="17:00")
            for code, name in (("E1", "Asha Rao"), ("E2", "Ben Ito")):
                await employees.add_employee(
                    uow, actor=SYSTEM, code=code, name=name, shift="Day", department="Maths"
                )
            await employees.add_employee(
                uow, actor=SYSTEM, code="S1", name="Sam Lee", shift="Day", department="Science"
            )
            await calendar.add_holiday(uow, actor=SYSTEM, day="2026-02-16", name="Founders")
            rows = []
            day = date(2026, 2, 2)
            while day < date(2026, 3, 1):
                if day.weekday() < 5:
                    rows += [
                        {"employee": "E1", "at": f"{day} 08:55", "direction": "IN"},
                        {"employee": "E1", "at": f"{day} 17:05", "direction": "OUT"},
                    ]
                day += timedelta(days=1)
            rows.append({"employee": "E2", "at": "2026-02-03 09:40", "direction": "IN"})
            await add_punches(uow, rows=rows, source="gate")
            await days.process_attendance(
                uow, actor=SYSTEM, date_from="2026-02-01", date_to="2026-03-01"
            )
    finally:
        await db.dispose()


@pytest.fixture
def att_settings(tui_settings: Settings, seeded: Any) -> Settings:  # noqa: F811
    asyncio.run(_seed_attendance(tui_settings))
    return tui_settings


async def _open(pilot: Any, role: Role) -> Any:
    await signed_in(pilot, role)
    await pilot.press("8")
    await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "AttendanceScreen", "screen")
    await settle(pilot)
    return pilot.app.screen


def _text(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_grid_detail_manual_punch_and_approval(att_settings: Settings) -> None:
    app = BatchOpsApp(att_settings, clock=lambda: NOW, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, Role.MODERATOR)
        grid = screen.query_one("#att-grid", DataTable)
        assert "March 2026" in _text(screen, "#grid-title")
        await pilot.press("left_square_bracket")
        await settle(pilot)
        title = _text(screen, "#grid-title")
        assert "February 2026 · all departments · 3 employees" in title and "PH 3" in title
        assert grid.row_count == 3 and len(grid.columns) == 1 + 28 + 2
        e1 = [str(c).strip() for c in grid.get_row_at(0)]
        assert (
            e1[0] == "E1" and e1[1:3] == ["WO", "P"] and e1[16] == "PH" and e1[-2:] == ["19", "0"]
        )
        assert str(grid.get_row_at(1)[3]).strip() == "MP"  # E2 punched in only, on the 3rd

        grid.move_cursor(row=1, column=3)
        await settle(pilot)
        detail = _text(screen, "#day-detail")
        assert "E2 Ben Ito · Tue 03 Feb · MP" in detail and "missing punch" in detail
        assert "punches: 09:40 IN" in detail and "08:55" not in detail
        grid.move_cursor(row=0, column=1)  # E1 on Sunday the 1st: Monday's punches are not its
        await settle(pilot)
        assert "WO — a week-off day" in _text(screen, "#day-detail")
        assert "punches" not in _text(screen, "#day-detail")
        grid.move_cursor(row=1, column=3)

        await pilot.press("m")  # the manual punch form for E2 on the 3rd
        await wait_for(pilot, lambda: len(app.screen_stack) > 1, "the form")
        form = app.screen
        form.query_one("#field-time", Input).value = "17:00"
        form.query_one("#field-direction", Select).value = "OUT"
        form.query_one("#field-reason", Input).value = "forgot to punch out"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is screen, "the form to close")
        await settle(pilot)
        async with app.db.unit() as uow:
            pending = (await uow.scalars(select(Punch).where(Punch.manual.is_(True)))).all()
        assert [(p.approval, p.requested_by) for p in pending] == [("pending", "mona")]

        await pilot.press("v")
        await settle(pilot)
        queue = screen.query_one("#queue-table", DataTable)
        assert queue.row_count == 1 and "1 pending" in _text(screen, "#queue-detail")
        await pilot.press("y")
        await settle(pilot)
        assert queue.row_count == 0
        await pilot.press("g")
        await settle(pilot)
        assert str(grid.get_row_at(1)[3]).strip() == "P"  # approved: its day recomputed


async def test_a_user_views_but_is_not_offered_changes(att_settings: Settings) -> None:
    app = BatchOpsApp(att_settings, clock=lambda: NOW, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, Role.USER)
        assert screen.check_action("process", ()) is False
        assert screen.check_action("manual", ()) is not False
        await pilot.press("v")
        await settle(pilot)
        assert screen.check_action("decide", (True,)) is False
        await pilot.press("s")
        await settle(pilot)
        assert screen.query_one("#shift-table", DataTable).row_count == 1
        assert screen.check_action("add", ()) is False


async def test_admin_edits_a_shift_with_the_keyboard(att_settings: Settings) -> None:
    app = BatchOpsApp(att_settings, clock=lambda: NOW, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, Role.ADMIN)
        await pilot.press("s")
        await settle(pilot)
        await pilot.press("e")
        await wait_for(pilot, lambda: len(app.screen_stack) > 1, "the form")
        app.screen.query_one("#field-grace_in", Input).value = "abc"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert len(app.screen_stack) > 1  # refused: the form stays open with the sentence
        app.screen.query_one("#field-grace_in", Input).value = "15"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is screen, "the form to close")
        await settle(pilot)
        table = screen.query_one("#shift-table", DataTable)
        assert str(table.get_row_at(0)[3]) == "15/10"


def test_attendance_snapshot(
    snap_compare: Any, att_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = dataclasses.replace(att_settings)

    async def run_before(pilot: Any) -> None:
        await _open(pilot, Role.MODERATOR)
        await pilot.press("left_square_bracket")
        await settle(pilot)

    app = BatchOpsApp(settings, clock=lambda: NOW, live=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
