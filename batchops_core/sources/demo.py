"""Demo sources for `batchops init --demo`: the demo departments' data arrives by itself.

In the data directory: `demo/gate_log.db`, a small SQLite biometric log (the Attendance
department's database source, read incrementally by id into the punches of the demo staff, whose
register is then processed), and `demo/drop/<department>/`, shared
folders holding the weekly exports of Exams and Library (folder sources, through intake and the
pipeline). Each source is synced once so the screens show real jobs, records and arrivals; a
second `init --demo` adds nothing.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from batchops_core.attendance.calendar import add_shift
from batchops_core.attendance.days import process_attendance
from batchops_core.attendance.employees import add_employee
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.permissions import SYSTEM
from batchops_core.sources.cadence import today
from batchops_core.sources.models import Source
from batchops_core.sources.service import add_source
from batchops_core.sources.sync import sync_source

DAYS = 8


def _school_days(end: date, count: int) -> list[date]:
    days, day = [], end
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day -= timedelta(days=1)
    return sorted(days)


EMPLOYEES = 25


def _gate_log(path: Path, days: list[date]) -> int:
    """Each employee punches in around 09:00 and out around 17:00 at one of two gates; a few
    are absent, late or leave early, and one forgets to punch out, so the register shows every
    status."""
    rng = random.Random(11)
    rows: list[tuple[int, str, str, str]] = []
    for day in days[:-1]:  # the last school day has not arrived yet: a missing day to show
        for n in range(1, EMPLOYEES + 1):
            if rng.random() < 0.08:
                continue  # absent
            start = datetime.combine(day, datetime.min.time()) + timedelta(hours=9)
            came = start + timedelta(minutes=rng.choice([-12, -5, 0, 3, 8, 25]))
            left = start + timedelta(hours=8, minutes=rng.choice([-40, -5, 0, 10, 45]))
            for at in (came, left) if rng.random() > 0.04 else (came,):
                rows.append((len(rows) + 1, f"E{n:03d}", at.isoformat(sep=" "), f"gate-{n % 2}"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS punch_log (id INTEGER PRIMARY KEY, emp_no TEXT NOT NULL, "
            "punched_at TEXT NOT NULL, device TEXT)"
        )
        conn.executemany("INSERT OR IGNORE INTO punch_log VALUES (?, ?, ?, ?)", rows)
    return len(rows)


def _drop(folder: Path, name: str, header: str, rows: list[str], day: date) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    stamp = time.mktime(datetime.combine(day, datetime.min.time()).replace(hour=16).timetuple())
    os.utime(path, (stamp, stamp))


def _drops(root: Path, days: list[date]) -> None:
    rng = random.Random(5)
    for i, day in enumerate(days[-6::5]):
        _drop(
            root / "exams",
            f"exams_week{i + 1}.csv",
            "Student ID,Name,Class,Score",
            [
                f"S{1000 + n},Student {n},{rng.choice(['9A', '9B'])},{rng.randint(40, 100)}"
                for n in range(30)
            ],
            day,
        )
        _drop(
            root / "library",
            f"library_week{i + 1}.csv",
            "Student ID,Book ID,Borrowed On,Returned,Days Out",
            [
                f"S{1000 + n},B{rng.randint(1, 9999):05d},{day.isoformat()},"
                f"{rng.choice(['yes', 'no'])},{rng.randint(0, 21)}"
                for n in range(25)
            ],
            day,
        )


def demo_sources(root: Path, first_day: date) -> list[tuple[str, str, str, dict[str, Any]]]:
    return [
        (
            "Attendance gate log",
            "database",
            "Attendance",
            {
                "url": f"sqlite:///{root / 'gate_log.db'}",
                "table": "punch_log",
                "id_column": "id",
                "timestamp_column": "punched_at",
                "columns": {"employee": "emp_no", "at": "punched_at", "device": "device"},
                "target": "punches",
                "cadence": "school days",
                "expected_from": first_day.isoformat(),
            },
        ),
        (
            "Exams drop folder",
            "folder",
            "Exams",
            {
                "path": str(root / "drop" / "exams"),
                "glob": "*.csv",
                "settle_seconds": 0,
                "cadence": "0 16 * * 5",
                "parser": {"key": "student_id"},
                "expected_from": first_day.isoformat(),
            },
        ),
        (
            "Library drop folder",
            "folder",
            "Library",
            {
                "path": str(root / "drop" / "library"),
                "glob": "*.csv",
                "settle_seconds": 0,
                "cadence": "0 16 * * 5",
                "parser": {"key": "student_id"},
                "expected_from": first_day.isoformat(),
            },
        ),
    ]


async def seed_demo_sources(db: Database, settings: Settings, dispatcher: Any = None) -> list[str]:
    """Create the demo log database, drop folders and sources (once), then sync each source."""
    root = Path(settings.data_dir) / "demo"
    days = _school_days(today(settings.timezone) - timedelta(days=1), DAYS)
    async with db.unit() as uow:
        existing = set(await uow.scalars(select(Source.name)))
    lines = []
    if not existing:
        punches = _gate_log(root / "gate_log.db", days)
        _drops(root / "drop", days)
        lines.append(f"demo log database {root / 'gate_log.db'} with {punches} punches")
        lines.append(await _demo_staff(db, days[0]))
    for name, kind, department, config in demo_sources(root, days[0]):
        if name in existing:
            lines.append(f"demo source {name} already exists.")
            continue
        async with db.unit() as uow:
            await add_source(
                uow, actor=SYSTEM, name=name, kind=kind, department=department, config=config
            )
        report = await sync_source(db, settings, actor=SYSTEM, name=name, dispatcher=dispatcher)
        state = report.error or f"{report.rows} rows from {len(report.jobs)} job(s)"
        lines.append(f"demo source {name} ({kind}, {department}): {state}")
    if not existing:
        async with db.unit() as uow:
            done = await process_attendance(uow, actor=SYSTEM, date_from=days[0], date_to=days[-1])
        lines.append(f"demo attendance register: {done.days} employee-days processed")
    return lines


async def _demo_staff(db: Database, joined: date) -> str:
    """The gate log's staff, on a 09:00–17:00 shift with the weekend off."""
    async with db.unit() as uow:
        await add_shift(uow, actor=SYSTEM, name="Day", start="09:00", end="17:00")
        for n in range(1, EMPLOYEES + 1):
            await add_employee(
                uow,
                actor=SYSTEM,
                code=f"E{n:03d}",
                name=f"Staff member {n}",
                shift="Day",
                department="Attendance",
                joined=(joined - timedelta(days=30)).isoformat(),
            )
    return f"demo staff: {EMPLOYEES} employees on the Day shift (09:00-17:00)"
