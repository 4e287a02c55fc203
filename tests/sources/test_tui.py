"""The Sources screen (key 7) with a pilot: sources and jobs, the missing-data grid whose marked
cells run, the Records view, roles; and one snapshot at 80×24."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from textual.widgets import DataTable, Input, Static

from batchops_core.enums import Role
from batchops_core.infra.config import Settings
from batchops_core.infra.db import open_database
from batchops_core.permissions import SYSTEM
from batchops_core.sources.models import JobStatus, Source, SourceJob, SourceRecord
from batchops_core.sources.service import add_source
from batchops_tui.app import BatchOpsApp
from tests.sources.conftest import PUNCH_TABLE
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

GRID_END = (NOW - timedelta(days=1)).date()  # 2026-03-01, a Sunday


def _external(folder: Path) -> Path:
    path = folder / "gate.db"
    with sqlite3.connect(path) as conn:
        conn.execute(PUNCH_TABLE)
        conn.executemany(
            "INSERT INTO punch_log VALUES (?, ?, ?, ?)",
            [(i, f"E{i:03d}", f"2026-02-{24 + i % 3} 08:00:00", "gate") for i in range(1, 31)],
        )
    return path


async def _seed_sources(settings: Settings, external: Path) -> None:
    db = open_database(settings)
    try:
        async with db.unit() as uow:
            await add_source(
                uow,
                actor=SYSTEM,
                name="Gate punches",
                kind="database",
                department="Attendance",
                config={
                    "url": f"sqlite:///{external}",
                    "table": "punch_log",
                    "id_column": "id",
                    "timestamp_column": "punched_at",
                    "columns": {"employee": "emp_no"},
                    "expected_from": "2026-02-16",
                },
            )
            await add_source(
                uow,
                actor=SYSTEM,
                name="Library drop",
                kind="folder",
                department="Library",
                config={"path": str(external.parent), "glob": "*.csv", "cadence": "0 7 * * 1"},
            )
            await uow.execute(
                update(Source)
                .where(Source.name == "Gate punches")
                .values(
                    last_sync_at=NOW - timedelta(hours=2), last_success_at=NOW - timedelta(hours=26)
                )
            )
            gate = await uow.scalar(select(Source.id).where(Source.name == "Gate punches"))
            for i, status in enumerate(["succeeded", "succeeded", "failed", "succeeded"]):
                uow.add(
                    SourceJob(
                        source_id=gate,
                        partition="",
                        day=date(2026, 2, 23) + timedelta(days=i),
                        status=JobStatus(status),
                        attempts=1 + (status == "failed"),
                        rows=0 if status == "failed" else 120,
                        error="cannot read punch_log: timeout." if status == "failed" else None,
                        processor_version="sources-1",
                        created_at=NOW,
                        updated_at=NOW,
                    )
                )
    finally:
        await db.dispose()


@pytest.fixture
def sources_settings(tui_settings: Settings, seeded: Any, tmp_path: Path) -> Settings:  # noqa: F811
    asyncio.run(_seed_sources(tui_settings, _external(tmp_path)))
    return tui_settings


def _cells(table: DataTable[Any], column: int = 0) -> list[str]:
    return [str(table.get_row_at(i)[column]) for i in range(table.row_count)]


async def test_sources_jobs_grid_run_and_records(sources_settings: Settings) -> None:
    app = BatchOpsApp(sources_settings, clock=lambda: NOW, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await signed_in(pilot, Role.MODERATOR)
        await pilot.press("7")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "SourcesScreen", "Sources")
        await settle(pilot)
        screen = app.screen
        sources = screen.query_one("#sources-table", DataTable)
        assert _cells(sources) == ["Gate punches", "Library drop"]
        assert str(sources.get_row_at(0)[5]) == "1d"  # lag since the last success
        jobs = screen.query_one("#jobs-table", DataTable)
        assert _cells(jobs) == ["2026-02-26", "2026-02-25", "2026-02-24", "2026-02-23"]
        jobs.focus()
        await pilot.press("down")  # to the failed day: its error shows below
        await settle(pilot)
        assert "cannot read punch_log: timeout." in str(
            screen.query_one("#job-detail", Static).render()
        )

        await pilot.press("m")
        await settle(pilot)
        grid = screen.query_one("#grid-table", DataTable)
        assert grid.row_count == 2 and len(grid.columns) == 11
        gate = [str(c) for c in grid.get_row_at(0)[1:]]
        # 02-20 .. 03-01: weekdays expected from 02-16; 23/24/26 arrived, 25 failed
        assert gate == ["✗", "·", "·", "■", "■", "!", "■", "✗", "·", "·"]
        grid.move_cursor(row=0, column=1)
        await pilot.press("space")
        await settle(pilot)
        await pilot.press("x")  # run the marked cell: a database source syncs what is new
        await settle(pilot)
        await wait_for(
            pilot,
            lambda: not app.workers or all(w.is_finished for w in app.workers if w.group == "sync"),
            "sync",
        )
        await settle(pilot)
        async with app.db.unit() as uow:
            count = await uow.scalar(select(func.count()).select_from(SourceRecord))
        assert count == 30

        await pilot.press("v")
        await settle(pilot)
        box = screen.query_one("#records-filter", Input)
        box.value = "Gate punches 2026-02-24 employee=E003"
        box.focus()
        await pilot.press("enter")
        await settle(pilot)
        records = screen.query_one("#records-table", DataTable)
        assert _cells(records, 3) == ["3"] and "1 record(s) shown" in str(
            screen.query_one("#records-status", Static).render()
        )


async def test_a_user_is_not_offered_sync(sources_settings: Settings) -> None:
    app = BatchOpsApp(sources_settings, clock=lambda: NOW, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await signed_in(pilot, Role.USER)
        await pilot.press("7")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "SourcesScreen", "Sources")
        await settle(pilot)
        assert app.screen.check_action("sync", ()) is False
        assert app.screen.check_action("test_parse", ()) is not False
        await pilot.press("s")
        await settle(pilot)
        async with app.db.unit() as uow:
            synced = await uow.scalar(
                select(Source.last_synced_id).where(Source.name == "Gate punches")
            )
        assert synced == 0


def test_sources_snapshot(
    snap_compare: Any, sources_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = dataclasses.replace(sources_settings)

    async def run_before(pilot: Any) -> None:
        await signed_in(pilot, Role.MODERATOR)
        await pilot.press("7")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "SourcesScreen", "Sources")
        await settle(pilot)

    app = BatchOpsApp(settings, clock=lambda: NOW, live=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
