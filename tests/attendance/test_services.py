"""Attendance services on SQLite and PostgreSQL: setup, punches in, process, manual punches with
approval, A–WO–A corrections and their revert, roles and audit."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from batchops_core.accounts import UserInfo
from batchops_core.attendance import calendar, corrections, days, employees, punches
from batchops_core.attendance.models import AttendanceDay, Punch
from batchops_core.attendance.views import PunchIn
from batchops_core.enums import Role
from batchops_core.errors import NotFound, PermissionDenied, ValidationFailed
from batchops_core.infra.db import Database
from batchops_core.models import AuditLog

Users = dict[Role, UserInfo]
NOV = (date(2026, 11, 1), date(2026, 11, 30))


async def setup_school(db: Database, users: Users) -> None:
    admin = users[Role.ADMIN].actor
    async with db.unit() as uow:
        await calendar.add_shift(uow, actor=admin, name="Day", start="09:00", end="17:00")
        await calendar.add_shift(
            uow, actor=admin, name="Night", start="22:00", end="06:00", week_off="none"
        )
        await employees.add_employee(
            uow, actor=admin, code="E1", name="Asha Rao", shift="Day", department="Maths"
        )
        await employees.add_employee(
            uow,
            actor=admin,
            code="E2",
            name="Ben Ito",
            shift="Day",
            department="Science",
            joined="2026-11-10",
        )
        await employees.add_employee(
            uow, actor=admin, code="N1", name="Night Guard", shift="Night", department="Estate"
        )
        await calendar.add_holiday(uow, actor=admin, day="2026-11-04", name="Founders' Day")


def p(code: str, at: str, direction: str = "BOTH", device: str = "gate") -> PunchIn:
    return PunchIn(
        employee_code=code, at=datetime.fromisoformat(at), direction=direction, device=device
    )


WEEK = [
    p("E1", "2026-11-02 08:58", "IN"),
    p("E1", "2026-11-02 17:02", "OUT"),
    p("E1", "2026-11-03 09:25", "IN"),
    p("E1", "2026-11-03 17:00", "OUT"),
    p("E1", "2026-11-05 09:00"),
    p("N1", "2026-11-02 21:55", "IN"),
    p("N1", "2026-11-03 06:05", "OUT"),
    p("GHOST", "2026-11-02 09:00"),
]


async def _day(db: Database, users: Users, code: str, when: str) -> dict:
    async with db.unit() as uow:
        rows = await days.show_days(
            uow, actor=users[Role.USER].actor, employee=code, date_from=when, date_to=when
        )
    assert len(rows) <= 1
    return rows[0].as_json() if rows else {}


async def test_punches_in_process_and_show(db: Database, users: Users) -> None:
    await setup_school(db, users)
    async with db.unit() as uow:
        assert await punches.add_punches(uow, rows=WEEK, source="biometric") == 7
    async with db.unit() as uow:  # a duplicate sync adds nothing
        report = await punches.ingest_punches(
            uow, actor=users[Role.ADMIN].actor, rows=WEEK, source="biometric"
        )
    assert (report.added, report.duplicates, report.unknown_codes) == (0, 7, ("GHOST",))
    async with db.unit() as uow:
        result = await days.process_attendance(
            uow, actor=users[Role.MODERATOR].actor, date_from="2026-11-01", date_to="2026-11-30"
        )
    assert result.days == 30 + 21 + 30 and result.inserted == result.days
    mon = await _day(db, users, "E1", "2026-11-02")
    assert mon["status"] == "P" and mon["in_time"] == "2026-11-02T08:58"
    assert mon["work_minutes"] == 454 and mon["flags"] == []
    assert (await _day(db, users, "E1", "2026-11-03"))["late_minutes"] == 25
    assert (await _day(db, users, "E1", "2026-11-04"))["status"] == "PH"
    assert (await _day(db, users, "E1", "2026-11-05"))["status"] == "MP"
    assert (await _day(db, users, "E1", "2026-11-07"))["status"] == "WO"
    assert (await _day(db, users, "E1", "2026-11-06"))["status"] == "A"
    night = await _day(db, users, "N1", "2026-11-02")
    assert night["status"] == "P" and night["out_time"] == "2026-11-03T06:05"
    assert await _day(db, users, "E2", "2026-11-09") == {}
    assert (await _day(db, users, "E2", "2026-11-10"))["status"] == "A"
    async with db.unit() as uow:  # idempotent: the second run writes nothing
        again = await days.process_attendance(
            uow, actor=users[Role.ADMIN].actor, date_from="2026-11-01", date_to="2026-11-30"
        )
        audit_rows = await uow.scalar(
            select(func.count(AuditLog.id)).where(AuditLog.action == "attendance.process")
        )
    assert again.changed == 0 and again.days == result.days and audit_rows == 2


async def test_late_punch_recomputes_only_its_day(db: Database, users: Users) -> None:
    await setup_school(db, users)
    async with db.unit() as uow:
        await punches.add_punches(uow, rows=WEEK, source="biometric")
        await days.process_attendance(
            uow, actor=users[Role.ADMIN].actor, date_from="2026-11-01", date_to="2026-11-30"
        )
    async with db.unit() as uow:
        before = {
            (r.employee_id, r.day): r.computed_at for r in await uow.scalars(select(AttendanceDay))
        }
    async with db.unit() as uow:
        await punches.add_punches(uow, rows=[p("E1", "2026-11-05 17:00")], source="biometric")
    async with db.unit() as uow:
        after = {
            (r.employee_id, r.day): r.computed_at for r in await uow.scalars(select(AttendanceDay))
        }
    changed = [k for k in after if after[k] != before[k]]
    assert [k[1] for k in changed] == [date(2026, 11, 5)]
    assert (await _day(db, users, "E1", "2026-11-05"))["status"] == "P"


async def test_manual_punch_pending_then_approved_counts(db: Database, users: Users) -> None:
    await setup_school(db, users)
    async with db.unit() as uow:
        await punches.add_punches(uow, rows=WEEK, source="biometric")
        await days.process_attendance(
            uow, actor=users[Role.ADMIN].actor, date_from="2026-11-05", date_to="2026-11-05"
        )
    async with db.unit() as uow:
        pending = await punches.request_punch(
            uow,
            actor=users[Role.USER].actor,
            code="E1",
            at="2026-11-05 17:05",
            direction="OUT",
            reason="forgot to punch out",
        )
    assert pending.approval == "pending" and pending.manual
    async with db.unit() as uow:
        await days.process_attendance(
            uow, actor=users[Role.ADMIN].actor, date_from="2026-11-05", date_to="2026-11-05"
        )
    assert (await _day(db, users, "E1", "2026-11-05"))["status"] == "MP"
    with pytest.raises(PermissionDenied):
        async with db.unit() as uow:
            await punches.decide_punch(
                uow, actor=users[Role.USER].actor, punch_id=pending.id, approve=True
            )
    async with db.unit() as uow:
        queue = await punches.list_punches(uow, actor=users[Role.USER].actor, approval="pending")
        assert [q.id for q in queue] == [pending.id]
        done = await punches.decide_punch(
            uow, actor=users[Role.MODERATOR].actor, punch_id=pending.id, approve=True
        )
    assert done.approval == "approved" and done.decided_by == "moderator1"
    row = await _day(db, users, "E1", "2026-11-05")
    assert row["status"] == "P" and "manual" in row["flags"]
    with pytest.raises(ValidationFailed, match="already approved"):
        async with db.unit() as uow:
            await punches.decide_punch(
                uow, actor=users[Role.MODERATOR].actor, punch_id=pending.id, approve=False
            )


async def test_rejected_manual_punch_never_counts(db: Database, users: Users) -> None:
    await setup_school(db, users)
    async with db.unit() as uow:
        await punches.add_punches(uow, rows=WEEK, source="biometric")
        req = await punches.request_punch(
            uow, actor=users[Role.USER].actor, code="E1", at="2026-11-05 17:00", reason="x"
        )
        await punches.decide_punch(
            uow, actor=users[Role.ADMIN].actor, punch_id=req.id, approve=False
        )
        await days.process_attendance(
            uow, actor=users[Role.ADMIN].actor, date_from="2026-11-05", date_to="2026-11-05"
        )
    assert (await _day(db, users, "E1", "2026-11-05"))["status"] == "MP"


async def test_awo_correction_and_exact_revert(db: Database, users: Users) -> None:
    await setup_school(db, users)
    mod = users[Role.MODERATOR].actor
    async with db.unit() as uow:  # E1 absent Fri 6 and Mon 9: the weekend between is A–WO–A
        await punches.add_punches(uow, rows=WEEK, source="biometric")
        await days.process_attendance(uow, actor=mod, date_from="2026-11-01", date_to="2026-11-30")
    async with db.unit() as uow:
        before = {
            (r.employee_id, r.day): (r.status, list(r.flags))
            for r in await uow.scalars(select(AttendanceDay))
        }
    async with db.unit() as uow:
        run = await corrections.correct_awo(
            uow, actor=mod, date_from="2026-11-01", date_to="2026-11-30"
        )
    e1 = [i for i in run.items if i.employee == "E1"]
    assert [(i.day.day, i.before, i.after) for i in e1][:2] == [(7, "WO", "A"), (8, "WO", "A")]
    assert run.changes == len(run.items) > 0
    sat = await _day(db, users, "E1", "2026-11-07")
    assert sat["status"] == "A" and "awo" in sat["flags"]
    async with db.unit() as uow:  # a recompute keeps the correction and has nothing to write
        again = await days.process_attendance(
            uow, actor=mod, date_from="2026-11-01", date_to="2026-11-30"
        )
    assert again.changed == 0
    assert (await _day(db, users, "E1", "2026-11-07"))["status"] == "A"
    async with db.unit() as uow:  # a second run finds nothing left to change
        second = await corrections.correct_awo(
            uow, actor=mod, date_from="2026-11-01", date_to="2026-11-30"
        )
    assert second.changes == 0
    async with db.unit() as uow:
        reverted = await corrections.revert_awo(uow, actor=mod, run_id=run.id)
    assert reverted.reverted_by == "moderator1" and not any(i.active for i in reverted.items)
    async with db.unit() as uow:
        after = {
            (r.employee_id, r.day): (r.status, list(r.flags))
            for r in await uow.scalars(select(AttendanceDay))
        }
    assert after == before
    with pytest.raises(ValidationFailed, match="already reverted"):
        async with db.unit() as uow:
            await corrections.revert_awo(uow, actor=mod, run_id=run.id)
    with pytest.raises(PermissionDenied):
        async with db.unit() as uow:
            await corrections.correct_awo(uow, actor=users[Role.USER].actor)


async def test_roles_and_validation(db: Database, users: Users) -> None:
    await setup_school(db, users)
    with pytest.raises(PermissionDenied):
        async with db.unit() as uow:
            await calendar.add_shift(
                uow, actor=users[Role.MODERATOR].actor, name="X", start="08:00", end="12:00"
            )
    cases = [
        ({"name": "Bad", "start": "25:00", "end": "12:00"}, "not a time"),
        ({"name": "day", "start": "08:00", "end": "12:00"}, "already exists"),
        ({"name": "Same", "start": "08:00", "end": "08:00"}, "cannot end when it starts"),
        ({"name": "W", "start": "08:00", "end": "12:00", "week_off": "sat,funday"}, "fun"),
    ]
    for fields, message in cases:
        with pytest.raises(ValidationFailed, match=message):
            async with db.unit() as uow:
                await calendar.add_shift(uow, actor=users[Role.ADMIN].actor, **fields)
    with pytest.raises(ValidationFailed, match="employee 'E1' cannot leave before"):
        async with db.unit() as uow:
            await employees.edit_employee(
                uow,
                actor=users[Role.ADMIN].actor,
                code="E1",
                joined="2026-11-10",
                left="2026-11-01",
            )
    with pytest.raises(ValidationFailed, match="1 employee"):
        async with db.unit() as uow:
            await calendar.remove_shift(uow, actor=users[Role.ADMIN].actor, shift="Night")
    with pytest.raises(NotFound):
        async with db.unit() as uow:
            await punches.request_punch(
                uow, actor=users[Role.USER].actor, code="NOPE", at="2026-11-02 09:00", reason="r"
            )
    async with db.unit() as uow:
        edited = await calendar.edit_shift(
            uow, actor=users[Role.ADMIN].actor, shift="Day", grace_in=5, week_off="sun"
        )
        count = await uow.scalar(select(func.count(Punch.id)))
    assert (edited.grace_in, edited.week_off, count) == (5, "sun", 0)
    async with db.unit() as uow:
        listed = await calendar.list_shifts(uow, actor=users[Role.USER].actor)
        hols = await calendar.list_holidays(uow, actor=users[Role.USER].actor, year=2026)
    assert [s.name for s in listed] == ["Day", "Night"] and hols[0].name == "Founders' Day"


async def test_a_correction_yields_when_the_day_was_worked_after_all(
    db: Database, users: Users
) -> None:
    await setup_school(db, users)
    mod = users[Role.MODERATOR].actor
    async with db.unit() as uow:
        await punches.add_punches(uow, rows=WEEK, source="biometric")
        await days.process_attendance(uow, actor=mod, date_from="2026-11-01", date_to="2026-11-30")
        run = await corrections.correct_awo(
            uow, actor=mod, date_from="2026-11-01", date_to="2026-11-30"
        )
    assert (await _day(db, users, "E1", "2026-11-07"))["status"] == "A"
    async with db.unit() as uow:  # Saturday's punches arrive late: the premise (WO) still holds
        await punches.add_punches(
            uow, rows=[p("E1", "2026-11-07 10:00"), p("E1", "2026-11-07 13:00")], source="late"
        )
    sat = await _day(db, users, "E1", "2026-11-07")
    assert sat["status"] == "A" and sat["overtime_minutes"] == 150
    async with db.unit() as uow:  # Friday was worked after all: Saturday is no longer A-WO-A
        await punches.add_punches(
            uow,
            rows=[p("E1", "2026-11-06 09:00", "IN"), p("E1", "2026-11-06 17:00", "OUT")],
            source="late",
        )
    assert (await _day(db, users, "E1", "2026-11-06"))["status"] == "P"
    # the correction's own day is untouched by Friday's punch: only a new run re-decides it
    assert (await _day(db, users, "E1", "2026-11-07"))["status"] == "A"
    async with db.unit() as uow:
        reverted = await corrections.revert_awo(uow, actor=mod, run_id=run.id)
    assert reverted.reverted_at is not None
    assert (await _day(db, users, "E1", "2026-11-07"))["status"] == "WO"
