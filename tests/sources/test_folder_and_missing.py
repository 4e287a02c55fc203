"""Folder sources, expected days from the cadence and the calendar, `missing` and `--run`."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest_asyncio
from sqlalchemy import func, select

from batchops_core.accounts import UserInfo
from batchops_core.enums import Role
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Upload
from batchops_core.sources.cadence import CalendarSpan, expected_days
from batchops_core.sources.calendar import add_calendar_entry
from batchops_core.sources.missing import find_missing, run_missing
from batchops_core.sources.models import CalendarKind, JobStatus, SourceRecord
from batchops_core.sources.service import add_source
from batchops_core.sources.sync import sync_source
from batchops_core.worker.dispatcher import Dispatcher
from tests.sources.conftest import FileServer
from tests.sources.test_http_sync import csv_body, serve_day

Users = dict[Role, UserInfo]


@pytest_asyncio.fixture
async def dispatcher(db: Database, db_settings: Settings) -> AsyncIterator[Dispatcher]:
    worker = Dispatcher(db, db_settings)
    yield worker
    await worker.close()


def _drop(folder: Path, name: str, body: bytes, when: str) -> Path:
    path = folder / name
    path.write_bytes(body)
    stamp = time.mktime(time.strptime(when, "%Y-%m-%d %H:%M"))
    os.utime(path, (stamp, stamp))
    return path


async def test_folder_takes_settled_new_files_once(
    db: Database, db_settings: Settings, users: Users, tmp_path: Path, dispatcher: Dispatcher
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    admin = users[Role.ADMIN].actor
    async with db.unit() as uow:
        await add_source(
            uow,
            actor=admin,
            name="Fees drop",
            kind="folder",
            department="Attendance",
            config={
                "path": str(drop),
                "glob": "*.csv",
                "settle_seconds": 30,
                "parser": {"key": "student_id"},
            },
        )
    _drop(drop, "week48.csv", csv_body(3), "2026-11-27 16:00")
    _drop(drop, "notes.txt", b"not matched by the glob", "2026-11-27 16:00")
    (drop / "week49.csv").write_bytes(csv_body(2, 50))  # just written: still growing
    report = await sync_source(
        db, db_settings, actor=admin, name="Fees drop", dispatcher=dispatcher
    )
    assert report.ok and [j.day.isoformat() for j in report.jobs] == ["2026-11-27"]
    assert report.jobs[0].status is JobStatus.SUCCEEDED and report.rows == 3
    assert report.skipped == ["week49.csv: still being written; left for the next pass"]

    os.utime(drop / "week49.csv", (time.time() - 60, time.time() - 60))
    _drop(drop, "week48-copy.csv", csv_body(3), "2026-11-28 09:00")  # same bytes: not new
    second = await sync_source(
        db, db_settings, actor=admin, name="Fees drop", dispatcher=dispatcher
    )
    assert second.ok and second.rows == 2 and second.skipped == []
    async with db.unit() as uow:
        uploads = list(await uow.scalars(select(Upload.source).order_by(Upload.id)))
        records = await uow.scalar(select(func.count()).select_from(SourceRecord))
    assert uploads == ["Attendance", "Attendance"] and records == 5

    third = await sync_source(db, db_settings, actor=admin, name="Fees drop", dispatcher=dispatcher)
    assert third.ok and third.jobs == [] and third.rows == 0


def test_school_days_and_cron_cadences() -> None:
    calendar = [
        CalendarSpan(CalendarKind.TERM, "Autumn", date(2026, 9, 1), date(2026, 12, 18)),
        CalendarSpan(CalendarKind.HOLIDAY, "Half term", date(2026, 10, 26), date(2026, 10, 30)),
    ]
    days = expected_days("school days", date(2026, 10, 22), date(2026, 11, 3), calendar)
    assert [d.isoformat() for d in days] == [
        "2026-10-22",
        "2026-10-23",
        "2026-11-02",
        "2026-11-03",
    ]
    assert expected_days("school days", date(2026, 12, 17), date(2026, 12, 22), calendar) == [
        date(2026, 12, 17),
        date(2026, 12, 18),
    ]
    assert len(expected_days("school days", date(2026, 12, 21), date(2026, 12, 27), [])) == 5
    mondays = expected_days("0 7 * * 1", date(2026, 11, 1), date(2026, 11, 30), [])
    assert [d.day for d in mondays] == [2, 9, 16, 23, 30]
    # 23:30 UTC is the next day in Asia/Kolkata: the firing's local date counts
    kolkata = expected_days("30 23 * * 1", date(2026, 11, 1), date(2026, 11, 10), [], "UTC")
    assert [d.day for d in kolkata] == [2, 9]


async def test_missing_lists_expected_days_and_run_fetches_them(
    db: Database,
    db_settings: Settings,
    users: Users,
    file_server: FileServer,
    dispatcher: Dispatcher,
) -> None:
    admin = users[Role.ADMIN].actor
    async with db.unit() as uow:
        await add_source(
            uow,
            actor=admin,
            name="Branches",
            kind="http",
            department="Attendance",
            config={
                "list_url": file_server.url + "/list/{date}/{pos}.json",
                "partitions": {"pos": [1, 2]},
                "backoff_seconds": 0.01,
                "alert_after_missing": 2,
            },
        )
        await add_calendar_entry(
            uow,
            actor=admin,
            kind="holiday",
            name="Founders day",
            start=date(2026, 12, 2),
            end=date(2026, 12, 2),
        )
    start, end = date(2026, 11, 30), date(2026, 12, 4)  # Mon..Fri, Wed a holiday
    serve_day(file_server, date(2026, 11, 30))
    await sync_source(
        db,
        db_settings,
        actor=admin,
        name="Branches",
        days=[date(2026, 11, 30)],
        dispatcher=dispatcher,
    )
    async with db.unit() as uow:
        missing = await find_missing(uow, actor=admin, settings=db_settings, start=start, end=end)
    assert [(m.partition, m.day.day, m.state) for m in missing] == [
        ("pos=1", 1, "none"),
        ("pos=1", 3, "none"),
        ("pos=1", 4, "none"),
        ("pos=2", 1, "none"),
        ("pos=2", 3, "none"),
        ("pos=2", 4, "none"),
    ]
    for day in (date(2026, 12, 1), date(2026, 12, 3)):
        serve_day(file_server, day)  # 12-04 stays missing at the branch: a 404
    found, reports = await run_missing(
        db, db_settings, actor=admin, start=start, end=end, dispatcher=dispatcher
    )
    assert len(found) == 6 and len(reports) == 1 and len(reports[0].jobs) == 6
    async with db.unit() as uow:
        left = await find_missing(uow, actor=admin, settings=db_settings, start=start, end=end)
    assert [(m.partition, m.day.day, m.state) for m in left] == [
        ("pos=1", 4, "failed"),
        ("pos=2", 4, "failed"),
    ]
    assert "HTTP 404" in (left[0].error or "")
