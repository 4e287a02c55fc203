"""Attendance days: process (idempotent recompute), show, absentees.

`process_attendance` runs the array engine over a range and stores only differences, so the
nightly run, a re-run and a run after a duplicate sync agree and the second writes nothing.
`recompute_days` is the narrow form used after a late punch or an approval: it computes the
affected employees and writes only the given (employee, day) rows that already exist.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, timedelta

from sqlalchemy import func, select

from batchops_core import audit
from batchops_core.attendance import daywrite, store
from batchops_core.attendance import processing as PR
from batchops_core.attendance.employees import find_employee
from batchops_core.attendance.models import AttendanceDay, Employee
from batchops_core.attendance.views import DayInfo, ProcessResult, parse_date, updated
from batchops_core.errors import ValidationFailed
from batchops_core.infra.clock import utcnow
from batchops_core.infra.db import UnitOfWork
from batchops_core.permissions import Action, Actor, require

MAX_RANGE_DAYS = 400


def date_range(date_from: str | date | None, date_to: str | date | None) -> tuple[date, date]:
    """Neither: yesterday (the nightly run); only --to: that day; only --from: to yesterday."""
    yesterday = utcnow().date() - timedelta(days=1)
    first = parse_date(date_from, "--from date") if date_from else None
    last = parse_date(date_to, "--to date") if date_to else None
    if first is None:
        first = last = last or yesterday
    elif last is None:
        last = max(first, yesterday)
    if last < first:
        raise ValidationFailed(f"the range ends ({last}) before it starts ({first}).")
    if (last - first).days >= MAX_RANGE_DAYS:
        raise ValidationFailed(f"process at most {MAX_RANGE_DAYS} days at once.")
    return first, last


async def compute(
    uow: UnitOfWork, first: date, last: date, ids: Collection[int] | None
) -> tuple[PR.EmployeeArrays, daywrite.DayTable]:
    emp = await store.load_employees(uow, first, last, ids)
    punches = await store.load_punches(uow, emp, first, last)
    holiday, festival = await store.load_holidays(uow, first, last)
    out = PR.compute_days(
        emp, punches, PR.day_number(first), PR.day_number(last), holiday, festival
    )
    table = daywrite.table_of(out, emp)
    await daywrite.overlay_corrections(uow, table, first, last)
    return emp, table


async def process_attendance(
    uow: UnitOfWork,
    *,
    actor: Actor,
    date_from: str | date | None = None,
    date_to: str | date | None = None,
    employee: str | None = None,
) -> ProcessResult:
    """Recompute [from, to] (default yesterday) for everyone or one employee code."""
    require(actor, Action.CORRECT_ATTENDANCE)
    first, last = date_range(date_from, date_to)
    ids = [(await find_employee(uow, employee)).id] if employee else None
    emp, table = await compute(uow, first, last, ids)
    inserted, changed, deleted = await daywrite.write_days(uow, table, first, last, ids)
    result = ProcessResult(
        date_from=first,
        date_to=last,
        employees=len(emp.ids),
        days=len(table.out),
        inserted=inserted,
        updated=changed,
        deleted=deleted,
    )
    audit.record(
        uow,
        actor=actor,
        action="attendance.process",
        target_type="attendance",
        target_name=employee or "all employees",
        detail=f"{first}..{last}: {len(table.out)} days, {inserted} new, {changed} changed, "
        f"{deleted} removed",
    )
    if result.changed:
        uow.emit(updated("days", None, "processed", first=str(first), last=str(last)))
    return result


async def recompute_days(uow: UnitOfWork, keys: Collection[tuple[int, date]]) -> int:
    """Recompute only these (employee id, day) rows, where they exist; returns rows changed."""
    if not keys:
        return 0
    ids = sorted({k[0] for k in keys})
    days = [k[1] for k in keys]
    rows = await uow.execute(
        select(AttendanceDay.employee_id, AttendanceDay.day).where(
            AttendanceDay.employee_id.in_(ids),
            AttendanceDay.day >= min(days),
            AttendanceDay.day <= max(days),
        )
    )
    existing = {(e, d) for e, d in rows} & set(keys)
    if not existing:
        return 0
    first, last = min(d for _, d in existing), max(d for _, d in existing)
    touched = sorted({e for e, _ in existing})
    _, table = await compute(uow, first, last, touched)
    inserted, changed, deleted = await daywrite.write_days(
        uow, table, first, last, touched, only=existing
    )
    if inserted + changed + deleted:
        uow.emit(updated("days", None, "recomputed", days=len(existing)))
    return inserted + changed + deleted


async def show_days(
    uow: UnitOfWork,
    *,
    actor: Actor,
    employee: str | None = None,
    department: str | None = None,
    date_from: str | date | None = None,
    date_to: str | date | None = None,
    status: str | None = None,
) -> list[DayInfo]:
    """Stored days by employee code then date (process first to fill them)."""
    require(actor, Action.VIEW_ATTENDANCE)
    first, last = date_range(date_from, date_to)
    query = (
        select(AttendanceDay, Employee.code, Employee.name, Employee.department)
        .join(Employee, Employee.id == AttendanceDay.employee_id)
        .where(AttendanceDay.day >= first, AttendanceDay.day <= last)
        .order_by(Employee.code, AttendanceDay.day)
    )
    if employee:
        query = query.where(Employee.id == (await find_employee(uow, employee)).id)
    if department:
        query = query.where(func.lower(Employee.department) == department.strip().lower())
    if status:
        query = query.where(AttendanceDay.status == status.strip().upper())
    rows = await uow.execute(query)
    return [day_info(d, code, name, dept) for d, code, name, dept in rows]


def day_info(row: AttendanceDay, code: str, name: str, department: str) -> DayInfo:
    return DayInfo(
        employee=code,
        name=name,
        department=department,
        date=row.day,
        status=str(row.status),
        computed_status=str(row.computed_status),
        rule=store.rule_text(row.rule),
        in_time=row.in_time,
        out_time=row.out_time,
        work_minutes=row.work_minutes,
        late_minutes=row.late_minutes,
        early_exit_minutes=row.early_exit_minutes,
        overtime_minutes=row.overtime_minutes,
        punch_count=row.punch_count,
        flags=tuple(row.flags or ()),
        pairs=tuple((str(a), str(b), int(m)) for a, b, m in row.pairs or ()),
        pair_minutes=row.pair_minutes,
    )


async def absentees(
    uow: UnitOfWork, *, actor: Actor, day: str | date | None = None, missing: bool = True
) -> list[DayInfo]:
    """Absent (A) and, with `missing`, missing-punch (MP) days of one date (default
    yesterday), by department. During the day itself MP means "came in", so leave it out."""
    require(actor, Action.VIEW_ATTENDANCE)
    when = parse_date(day, "--date") if day else utcnow().date() - timedelta(days=1)
    wanted = ["A", "MP"] if missing else ["A"]
    rows = await uow.execute(
        select(AttendanceDay, Employee.code, Employee.name, Employee.department)
        .join(Employee, Employee.id == AttendanceDay.employee_id)
        .where(AttendanceDay.day == when, AttendanceDay.status.in_(wanted))
        .order_by(Employee.department, Employee.code)
    )
    return [day_info(d, code, name, dept) for d, code, name, dept in rows]
