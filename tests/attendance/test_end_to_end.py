"""From an external punch database, synced by a Sources database source (target punches),
to the monthly register, on both BatchOps databases; the automation bodies on the way."""

from __future__ import annotations

import csv
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from batchops_core.accounts import UserInfo
from batchops_core.attendance import calendar, days, employees
from batchops_core.attendance.models import Punch
from batchops_core.enums import Role
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Department
from batchops_core.sources.service import add_source
from batchops_core.sources.sync import sync_source
from batchops_core.worker.automation import attendance as jobs
from batchops_core.worker.automation.frame import AutomationRun
from batchops_core.worker.context import TaskContext
from tests.mailserver import MailServer, mailserver, smtp_settings

__all__ = ["mailserver"]
Users = dict[Role, UserInfo]


def _log(path: Path, rows: list[tuple[str, str, str, str]]) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS punch_log (id INTEGER PRIMARY KEY, emp_no TEXT NOT NULL, "
            "punched_at TIMESTAMP NOT NULL, dir TEXT, device TEXT)"
        )
        start = conn.execute("SELECT COALESCE(MAX(id), 0) FROM punch_log").fetchone()[0]
        conn.executemany(
            "INSERT INTO punch_log VALUES (?, ?, ?, ?, ?)",
            [(start + i + 1, *row) for i, row in enumerate(rows)],
        )


def _month_of_punches() -> list[tuple[str, str, str, str]]:
    rows = []
    day = date(2026, 11, 2)
    while day.month == 11:
        if day.weekday() < 5:
            for code in ("E001", "E002"):
                if code == "E002" and day.day in (6, 9):
                    continue  # absent Friday 6 and Monday 9: A-WO-A around the weekend
                rows.append((code, f"{day} 08:5{day.day % 10}:00", "IN", "gate-1"))
                rows.append((code, f"{day} 17:0{day.day % 10}:00", "OUT", "gate-2"))
        day += timedelta(days=1)
    rows.append(("E404", "2026-11-02 09:00:00", "IN", "gate-1"))
    return rows


async def _school(db: Database, users: Users) -> None:
    admin = users[Role.ADMIN].actor
    async with db.unit() as uow:
        await calendar.add_shift(uow, actor=admin, name="Day", start="09:00", end="17:00")
        for code, dept in (("E001", "Maths"), ("E002", "Science")):
            await employees.add_employee(
                uow, actor=admin, code=code, name=f"Teacher {code}", shift="Day", department=dept
            )
        await calendar.add_holiday(uow, actor=admin, day="2026-11-20", name="Sports day")


async def test_external_database_to_register(
    db: Database, db_settings: Settings, users: Users, tmp_path: Path
) -> None:
    await _school(db, users)
    log = tmp_path / "biometric.db"
    _log(log, _month_of_punches())
    admin = users[Role.ADMIN].actor
    async with db.unit() as uow:
        await add_source(
            uow,
            actor=admin,
            name="Biometric",
            kind="database",
            department="Attendance",
            config={
                "url": f"sqlite:///{log}",
                "table": "punch_log",
                "id_column": "id",
                "timestamp_column": "punched_at",
                "columns": {
                    "employee": "emp_no",
                    "at": "punched_at",
                    "direction": "dir",
                    "device": "device",
                },
                "target": "punches",
                "batch_size": 50,
            },
        )
    report = await sync_source(db, db_settings, actor=admin, name="Biometric")
    assert report.ok, report
    again = await sync_source(db, db_settings, actor=admin, name="Biometric")
    assert again.ok and again.rows == 0
    async with db.unit() as uow:
        stored = await uow.scalar(select(func.count(Punch.id)))
    assert stored == len(_month_of_punches()) - 1  # the unknown E404 is reported, not stored

    run = AutomationRun(ctx=TaskContext(db=db, settings=db_settings, worker="test"), run_id=1)
    outcome = await jobs.attendance_register(run, month="2026-11")
    assert outcome.rows == 0  # nothing processed yet: an empty register, not a failure
    async with db.unit() as uow:
        await days.process_attendance(
            uow, actor=users[Role.MODERATOR].actor, date_from="2026-11-01", date_to="2026-11-30"
        )
    outcome = await jobs.attendance_register(run, month="2026-11")
    assert outcome.data["files"] == [
        "attendance/register-2026-11.csv",
        "attendance/register-2026-11.pdf",
    ]
    csv_path = db_settings.storage_path / "attendance" / "register-2026-11.csv"
    assert outcome.rows == 2
    with csv_path.open() as fh:
        reg = {r["code"]: r for r in csv.DictReader(fh)}
    assert reg["E001"]["P"] == "20" and reg["E001"]["PH"] == "1" and reg["E001"]["A"] == "0"
    assert reg["E002"]["A"] == "2" and reg["E002"]["7"] == "WO" and reg["E002"]["20"] == "PH"
    assert (db_settings.storage_path / "attendance" / "register-2026-11.pdf").stat().st_size


async def test_process_and_absentee_bodies(
    db: Database, db_settings: Settings, users: Users, mailserver: MailServer
) -> None:
    await _school(db, users)
    settings = smtp_settings(db_settings, mailserver)
    async with db.unit() as uow:
        uow.add(Department(name="Maths", contact_email="maths-head@school.example"))
        uow.add(Department(name="Science", contact_email="science-head@school.example"))
    today = jobs.local_today()
    yesterday = today - timedelta(days=1)
    from batchops_core.attendance.punches import add_punches

    async with db.unit() as uow:
        await add_punches(
            uow,
            rows=[
                {
                    "employee": "E001",
                    "at": datetime.combine(today, datetime.min.time()) + timedelta(hours=9),
                    "direction": "IN",
                },
                {"employee": "E001", "at": f"{yesterday} 09:00", "direction": "IN"},
                {"employee": "E001", "at": f"{yesterday} 17:00", "direction": "OUT"},
            ],
            source="gate",
        )
    run = AutomationRun(ctx=TaskContext(db=db, settings=settings, worker="test"), run_id=1)
    outcome = await jobs.attendance_process(run)
    assert outcome.rows == 2 and outcome.data["changed"] == 2
    async with db.unit() as uow:
        shown = await days.show_days(uow, actor=users[Role.USER].actor, date_from=yesterday)
    statuses = {r.employee: r.status for r in shown if r.date == yesterday}
    working = yesterday.weekday() < 5
    assert statuses == ({"E001": "P", "E002": "A"} if working else {"E001": "WO", "E002": "WO"})
    outcome = await jobs.attendance_absentees(run)
    if today.weekday() >= 5:
        assert outcome.rows == 0 and not mailserver.messages
        return
    mails = mailserver.wait_for(1)
    assert outcome.rows == 1 and [m.recipients for m in mails] == [["science-head@school.example"]]
    assert "E002" in mails[0].text and "E001" not in mails[0].text
