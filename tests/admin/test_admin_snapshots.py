"""Snapshots at 80×24 of the admin screens and their forms, on the seeded data with a frozen
clock. Update with `pytest tests/admin/test_admin_snapshots.py --snapshot-update` after
checking the SVGs."""

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

CASES = [
    ("D", "DepartmentsScreen", None),
    ("D", "DepartmentsScreen", "e"),
    ("K", "KnownErrorsScreen", None),
    ("K", "KnownErrorsScreen", "e"),
    ("K", "KnownErrorsScreen", "t"),
]


@pytest.fixture
def snap_settings(
    tui_settings: Settings, seeded: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    monkeypatch.chdir(tmp_path)
    Path("inbox").mkdir()
    return dataclasses.replace(
        tui_settings, pipeline=dataclasses.replace(tui_settings.pipeline, intake_root="inbox")
    )


@pytest.mark.parametrize(
    ("key", "screen", "then"), CASES, ids=[f"{s}-{t or 'list'}" for _, s, t in CASES]
)
def test_admin_screen_80x24(
    snap_compare: Any, snap_settings: Settings, key: str, screen: str, then: str | None
) -> None:
    async def run_before(pilot: Any) -> None:
        await signed_in(pilot, Role.ADMIN)
        await pilot.press(key)
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == screen, screen)
        await settle(pilot)
        if then:
            await pilot.press(then)
            await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "FormDialog")
            await settle(pilot)

    app = BatchOpsApp(snap_settings, clock=lambda: NOW, live=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
