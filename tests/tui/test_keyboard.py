"""Keyboard alone at 80×24 (#13): auto-typed sign-in, first-field focus, keys typed while a dialog
opens, focus returning where it came from, tabbing that scrolls, a help page that scrolls."""

from __future__ import annotations

from typing import Any

from textual import events
from textual.widgets import Input, Select

from batchops_core.enums import Role
from batchops_tui.widgets.common.paged_table import PagedTable
from tests.tui.conftest import settle, signed_in, wait_for
from tests.tui.seed import PASSWORD, USERNAMES
from tests.tui.test_actions import choose_row
from tests.tui.test_screens import goto

SIZE = (80, 24)


def burst(app: Any, *keys: str) -> None:
    """Send keys the way a terminal delivers a paste or a password manager's auto-type: all
    queued at once, without waiting for any of them to be handled (Pilot.press waits)."""
    named = {"tab", "enter", "escape", "backspace"}
    for key in keys:
        for k in [key] if key in named else list(key):
            char = {"tab": "\t", "enter": "\r"}.get(k, k if len(k) == 1 else None)
            event = events.Key(k, char)
            event.set_sender(app)
            app._driver.send_message(event)


async def test_auto_typed_username_tab_password_enter_signs_in(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        burst(app, USERNAMES[Role.MODERATOR], "tab", PASSWORD, "enter")
        await wait_for(pilot, lambda: app.current_mode == "home", "Home after auto-type")
        await settle(pilot)
        assert app.session is not None and app.session.user.username == "mona"


async def test_username_enter_password_enter_burst_signs_in(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        burst(app, USERNAMES[Role.USER], "enter", PASSWORD, "enter")
        await wait_for(pilot, lambda: app.current_mode == "home", "Home after auto-type")
        await settle(pilot)


async def test_dialogs_open_on_their_first_field_and_focus_returns(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.ADMIN)
        await goto(pilot, "6", "SchedulesScreen")
        table = app.screen.query_one(PagedTable).table
        assert app.focused is table
        await pilot.press("c")
        await settle(pilot)
        assert app.focused is not None and app.focused.id == "s-name"
        await pilot.press(*"abc")
        assert app.screen.query_one("#s-name", Input).value == "abc"
        await pilot.press("escape")
        await settle(pilot)
        assert app.focused is table

        await pilot.press("u")
        await wait_for(pilot, lambda: app.current_mode == "users", "users")
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        assert app.focused is not None and app.focused.id == "field-username"


async def test_keys_typed_while_a_dialog_opens_land_in_its_first_field(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.ADMIN)
        await goto(pilot, "6", "SchedulesScreen")
        app.screen.action_create()  # the dialog is pushed, not yet composed
        burst(app, "nightly", "tab")
        await settle(pilot)
        dialog = app.screen
        assert type(dialog).__name__ == "ScheduleDialog"
        assert dialog.query_one("#s-name", Input).value == "nightly"
        assert app.focused is dialog.query_one("#s-task", Select)

        await pilot.press("escape")
        await goto(pilot, "4", "IssuesScreen")
        await choose_row(pilot, "2")
        app.screen.action_analyze()  # loads the incident first, then opens the form
        burst(app, "tab", "tab", "late")  # root cause, corrective action, impact
        await settle(pilot)
        assert type(app.screen).__name__ == "FormDialog"
        assert app.screen.query_one("#field-impact_summary", Input).value == "late"
        assert type(app.screen_stack[-2]).__name__ == "IssuesScreen"


async def test_closing_the_detail_pane_returns_focus_and_v_takes_the_highlighted_row(
    make_app, tui_db
) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await goto(pilot, "4", "IssuesScreen")
        screen = app.screen
        table = screen.query_one(PagedTable).table
        await choose_row(pilot, "2")
        await pilot.press("enter")
        await settle(pilot)
        pane = screen.query_one("#incident-detail")
        assert pane.has_class("open")
        pane.focus()
        await pilot.pause()
        await pilot.press("escape")
        await settle(pilot)
        assert not pane.has_class("open")
        assert app.focused is table
        await choose_row(pilot, "3")
        await pilot.press("v")
        await settle(pilot)
        assert app.screen.query_one(".dialog-title").render().plain == "Resolve incident #3"


async def test_tabbing_through_the_plan_form_scrolls_every_field_into_view(
    make_app, tui_db
) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.USER)
        await goto(pilot, "2", "IntakeScreen")
        screen = app.screen
        form = screen.query_one("#intake-form")
        screen.query_one("#plan-mode", Select).focus()
        for wanted in ("p-group_by", "p-columns", "p-grade_scale"):
            await pilot.press("tab")
            await settle(pilot)
            assert app.focused is not None and app.focused.id == wanted
            assert form.region.contains_region(app.focused.region), wanted
        screen.query_one("#plan-mode", Select).value = "delete"
        await settle(pilot)
        screen.query_one("#plan-mode", Select).focus()
        await pilot.press("tab", "tab")
        await settle(pilot)
        assert app.focused is not None and app.focused.id == "p-combine"
        assert form.region.contains_region(app.focused.region)


async def test_help_scrolls_from_the_keyboard_and_is_built_once(make_app, tui_db) -> None:
    from batchops_tui.screens.help import binding_sections

    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await pilot.press("question_mark")
        await settle(pilot)
        scroll = app.screen.query_one("#help-scroll")
        assert app.focused is scroll
        assert scroll.max_scroll_y > 0
        await pilot.press("pagedown")
        await settle(pilot)
        assert scroll.scroll_y > 0
        await pilot.press("end")
        await settle(pilot)
        assert scroll.scroll_y == scroll.max_scroll_y
        await pilot.press("escape")
        await settle(pilot)
        hits = binding_sections.cache_info().hits
        await pilot.press("question_mark")
        await settle(pilot)
        assert binding_sections.cache_info().hits > hits  # not rebuilt


async def test_palette_lists_screen_actions_not_table_internals(make_app, tui_db) -> None:
    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await goto(pilot, "3", "RunsScreen")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "session: sign out" in titles
        for internal in ("cursor", "scroll", "page up", "select cursor"):
            assert not [t for t in titles if internal in t.lower()], (internal, titles)


async def test_a_burst_with_the_opening_key_lands_in_the_dialog(make_app, tui_db) -> None:
    """`n` and the text after it in one burst (tmux send-keys, a slow link): the text goes
    into the form, never to the table underneath (whose `a` would open Assign)."""
    app = make_app(tui_db, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await goto(pilot, "4", "IssuesScreen")
        await choose_row(pilot, "2")
        burst(app, "n", "template changed", "tab", "tab", "fees late a day")
        await settle(pilot)
        dialog = app.screen
        assert type(dialog).__name__ == "FormDialog"
        assert dialog.query_one("#field-impact_summary", Input).value == "fees late a day"
        assert dialog.query_one("#field-root_cause").text == "template changed"
        assert len(app.screen_stack) == 2  # no Assign dialog opened underneath
