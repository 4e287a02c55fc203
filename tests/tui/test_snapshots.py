"""Snapshots of every screen at 80×24 and 160×48 on deterministic seeded data.

Time is frozen (the app's clock and every seeded timestamp derive from NOW), the cursor does not
blink, and the intake tree is rooted at a relative folder so that no temporary path shows.
Update with `pytest tests/tui/test_snapshots.py --snapshot-update` after checking the SVGs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from batchops_core import accounts
from batchops_core.enums import Role
from batchops_core.infra.config import Settings
from batchops_tui.app import BatchOpsApp
from tests.tui.conftest import settle, signed_in, wait_for
from tests.tui.seed import NOW

SIZES = [(80, 24), (160, 48)]
SCREENS = [
    ("1", "HomeScreen"),
    ("2", "IntakeScreen"),
    ("3", "RunsScreen"),
    ("4", "IssuesScreen"),
    ("5", "ReportsScreen"),
    ("6", "SchedulesScreen"),
]


@pytest.fixture
def snap_settings(
    tui_settings: Settings, seeded: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    monkeypatch.chdir(tmp_path)
    # Sign-in stamps `last_login_at` with the real clock; the screens show it (Users).
    monkeypatch.setattr(accounts, "utcnow", lambda: NOW)
    Path("inbox").mkdir()
    Path("inbox/grades.csv").write_text("student_id,score\nS1,80\n", encoding="utf-8")
    return dataclasses.replace(
        tui_settings,
        export_dir="exports",  # relative to the test's folder: no temporary path on screen
        pipeline=dataclasses.replace(tui_settings.pipeline, intake_root="inbox"),
    )


def _app(settings: Settings) -> BatchOpsApp:
    return BatchOpsApp(settings, clock=lambda: NOW, live=False)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_sign_in(snap_compare: Any, snap_settings: Settings, size: tuple[int, int]) -> None:
    assert snap_compare(_app(snap_settings), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(("key", "screen"), SCREENS, ids=[s for _, s in SCREENS])
def test_screen(
    snap_compare: Any, snap_settings: Settings, key: str, screen: str, size: tuple[int, int]
) -> None:
    async def run_before(pilot: Any) -> None:
        await signed_in(pilot, Role.MODERATOR)
        if key != "1":
            await pilot.press(key)
            await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == screen, screen)
            await settle(pilot)
        if screen in ("RunsScreen", "IssuesScreen"):
            await pilot.press("enter")  # open the detail of the first row
            await settle(pilot)
        await settle(pilot)

    assert snap_compare(_app(snap_settings), terminal_size=size, run_before=run_before)


async def _open(pilot: Any, role: Role, key: str, screen: str, *presses: str) -> None:
    await signed_in(pilot, role)
    if key:
        await pilot.press(key)
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == screen, screen)
        await settle(pilot)
    for press in presses:
        await pilot.press(press)
        await settle(pilot)
    await settle(pilot)


DIALOGS: dict[str, tuple[Role, str, str, tuple[str, ...]]] = {
    # name: (role, screen key, screen class, keys that open the dialog)
    "resolve": (Role.MODERATOR, "4", "IssuesScreen", ("v",)),
    "analyze": (Role.MODERATOR, "4", "IssuesScreen", ("n",)),
    "assign": (Role.MODERATOR, "4", "IssuesScreen", ("a",)),
    "archive-confirm": (Role.MODERATOR, "4", "IssuesScreen", ("down", "down", "down", "x")),
    "reopen": (Role.MODERATOR, "4", "IssuesScreen", ("down", "down", "down", "o")),
    "rerun-confirm": (Role.MODERATOR, "3", "RunsScreen", ("down", "down", "enter", "f")),
    "export": (Role.USER, "5", "ReportsScreen", ("enter", "e")),
    "schedule-new": (Role.ADMIN, "6", "SchedulesScreen", ("c",)),
    "schedule-edit": (Role.ADMIN, "6", "SchedulesScreen", ("e",)),
    "run-now-confirm": (Role.USER, "6", "SchedulesScreen", ("g",)),
    "user-new": (Role.ADMIN, "u", "UsersScreen", ("c",)),
    "user-role": (Role.ADMIN, "u", "UsersScreen", ("o",)),
    "help": (Role.MODERATOR, "", "HomeScreen", ("question_mark",)),
    "lock": (Role.MODERATOR, "", "HomeScreen", ("ctrl+l",)),
}


@pytest.mark.parametrize("name", list(DIALOGS))
def test_dialog_80x24(snap_compare: Any, snap_settings: Settings, name: str) -> None:
    role, key, screen, presses = DIALOGS[name]

    async def run_before(pilot: Any) -> None:
        await _open(pilot, role, key, screen, *presses)
        assert type(pilot.app.screen).__name__ != screen, f"{name} did not open"

    assert snap_compare(_app(snap_settings), terminal_size=(80, 24), run_before=run_before)


@pytest.mark.parametrize("key", ["f2", "f3"], ids=["verify-email", "reset-password"])
def test_account_code_dialog_80x24(snap_compare: Any, snap_settings: Settings, key: str) -> None:
    async def run_before(pilot: Any) -> None:
        await pilot.pause()
        await pilot.press(key)
        await settle(pilot)

    assert snap_compare(_app(snap_settings), terminal_size=(80, 24), run_before=run_before)
