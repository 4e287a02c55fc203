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
    Path("inbox").mkdir()
    Path("inbox/grades.csv").write_text("student_id,score\nS1,80\n", encoding="utf-8")
    return dataclasses.replace(
        tui_settings, pipeline=dataclasses.replace(tui_settings.pipeline, intake_root="inbox")
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
