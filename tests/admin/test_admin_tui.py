"""The Departments (D) and Known errors (K) admin screens at 80×24, keyboard only."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from textual.widgets import Static

from batchops_core.enums import Role
from batchops_core.models import Department, KnownError
from tests.tui.conftest import settle, signed_in, wait_for
from tests.tui.test_actions import choose_row, fill, footer_actions, scalar
from tests.tui.test_screens import goto, rows


async def test_admin_creates_edits_and_deactivates_a_department(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await signed_in(pilot, Role.ADMIN)
        await goto(pilot, "D", "DepartmentsScreen")
        names = [r[0] for r in rows(app)]
        assert "Library" in names and "Exams" in names
        library = next(r for r in rows(app) if r[0] == "Library")
        assert library[2] == "no", "the seeded Library feed is not a gradebook"

        await pilot.press("c")
        await settle(pilot)
        assert type(app.focused).__name__ == "Input", "the form opens on its first field"
        await fill(pilot, name="Sports", contact_email="not an email")
        assert type(app.screen).__name__ == "FormDialog", "a refusal keeps the form open"
        await fill(pilot, contact_email="coach@school.example", gradebook="yes")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "DepartmentsScreen")
        await settle(pilot)
        made = await scalar(tui_db, select(Department).where(Department.name == "Sports"))
        assert made.gradebook is True and made.contact_email == "coach@school.example"

        await choose_row(pilot, str(made.id))
        await pilot.press("space")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        active = await scalar(tui_db, select(Department.active).where(Department.id == made.id))
        assert active is False


async def test_known_error_pattern_is_tested_and_refused_beside_its_field(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await signed_in(pilot, Role.ADMIN)
        await goto(pilot, "K", "KnownErrorsScreen")
        assert len(rows(app)) >= 9
        await pilot.press("t")
        await settle(pilot)
        await fill(pilot, pattern=".")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "KnownErrorsScreen")
        text = str(app.screen.query_one("#known-errors-test", Static).render())
        assert "matches" in text and "of the last" in text

        await pilot.press("c")
        await settle(pilot)
        await fill(pilot, name="Backref", pattern=r"^(a)\1")
        assert type(app.screen).__name__ == "FormDialog"
        error = str(app.screen.query_one("#error-pattern").render())
        assert "backreference" in error
        await fill(pilot, pattern="^TYPE_MISMATCH")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "KnownErrorsScreen")
        saved = await scalar(tui_db, select(KnownError.pattern).where(KnownError.name == "Backref"))
        assert saved == "^TYPE_MISMATCH"


async def test_admin_screens_are_not_offered_to_moderators(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await pilot.press("D")
        await settle(pilot)
        assert type(app.screen).__name__ != "DepartmentsScreen"
        actions: Any = footer_actions(app)
        assert "app.goto('departments')" not in actions
