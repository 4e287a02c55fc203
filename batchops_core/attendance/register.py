"""The monthly register: one row per employee, a column per day, totals; CSV and PDF.

The files are written by the pipeline's publish code (`csv_out.write_csv`: Arrow writer with
formula neutralization; `pdf_out.write_pdf`: the report layout every BatchOps report has), each
atomically (`atomic.write_atomic`), so a register looks like every other report and a crash
never leaves half a file. Reading the days is a service (`month_register`); rendering is plain
CPU work (`write_register`) that a caller may run in a thread or a process.
"""

from __future__ import annotations

import calendar as cal
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from batchops_core.attendance.models import AttendanceDay, Employee
from batchops_core.errors import ValidationFailed
from batchops_core.infra.db import UnitOfWork
from batchops_core.permissions import Action, Actor, require

TOTALS = ("P", "A", "HD", "WO", "PH", "MP")
FORMATS = ("csv", "pdf")


@dataclass(frozen=True)
class RegisterRow:
    code: str
    name: str
    department: str
    statuses: tuple[str, ...]
    """One per day of the month; '' where the employee had no row (not yet joined, left)."""
    late_days: int
    overtime_minutes: int
    pair_minutes: int

    def count(self, status: str) -> int:
        return sum(1 for s in self.statuses if s == status)


@dataclass(frozen=True)
class Register:
    month: date
    department: str | None
    days: int
    rows: tuple[RegisterRow, ...]

    @property
    def title(self) -> str:
        where = f" - {self.department}" if self.department else ""
        return f"Attendance register {self.month:%B %Y}{where}"


def parse_month(text: str | date) -> date:
    if isinstance(text, date):
        return text.replace(day=1)
    try:
        year, month = (int(p) for p in str(text).strip().split("-"))
        return date(year, month, 1)
    except ValueError:
        raise ValidationFailed(f"the month '{text}' is not like 2026-11.") from None


async def month_register(
    uow: UnitOfWork, *, actor: Actor, month: str | date, department: str | None = None
) -> Register:
    """The stored days of a month (process them first) as register rows by department, code."""
    require(actor, Action.VIEW_ATTENDANCE)
    first = parse_month(month)
    n_days = cal.monthrange(first.year, first.month)[1]
    last = first.replace(day=n_days)
    query = (
        select(
            Employee.code,
            Employee.name,
            Employee.department,
            AttendanceDay.day,
            AttendanceDay.status,
            AttendanceDay.late_minutes,
            AttendanceDay.overtime_minutes,
            AttendanceDay.pair_minutes,
        )
        .join(Employee, Employee.id == AttendanceDay.employee_id)
        .where(AttendanceDay.day >= first, AttendanceDay.day <= last)
        .order_by(Employee.department, Employee.code, AttendanceDay.day)
    )
    if department:
        query = query.where(func.lower(Employee.department) == department.strip().lower())
    people: dict[str, dict[str, Any]] = {}
    for code, name, dept, day, status, late, overtime, pairs in await uow.execute(query):
        entry = people.setdefault(
            code,
            {"name": name, "dept": dept, "st": [""] * n_days, "late": 0, "ot": 0, "pairs": 0},
        )
        entry["st"][day.day - 1] = str(status)
        entry["late"] += late > 0
        entry["ot"] += overtime
        entry["pairs"] += pairs
    rows = tuple(
        RegisterRow(
            code=code,
            name=e["name"],
            department=e["dept"],
            statuses=tuple(e["st"]),
            late_days=e["late"],
            overtime_minutes=e["ot"],
            pair_minutes=e["pairs"],
        )
        for code, e in people.items()
    )
    return Register(month=first, department=department, days=n_days, rows=rows)


def register_frame(register: Register) -> Any:
    """The register as a DataFrame: code, name, department, 1..31, totals, late, overtime."""
    import pandas as pd

    data: dict[str, list[Any]] = {
        "code": [r.code for r in register.rows],
        "name": [r.name for r in register.rows],
        "department": [r.department for r in register.rows],
    }
    for day in range(register.days):
        data[str(day + 1)] = [r.statuses[day] for r in register.rows]
    for status in TOTALS:
        data[status] = [r.count(status) for r in register.rows]
    data["late"] = [r.late_days for r in register.rows]
    data["overtime_hours"] = [round(r.overtime_minutes / 60, 2) for r in register.rows]
    data["paid_hours"] = [round(r.pair_minutes / 60, 2) for r in register.rows]
    return pd.DataFrame(data)


def write_register(register: Register, path: Path, fmt: str) -> dict[str, Any]:
    """Write the CSV or PDF atomically; returns {"path", "rows", …}."""
    from batchops_core.pipeline.atomic import write_atomic

    if fmt not in FORMATS:
        raise ValidationFailed(f"the format '{fmt}' is not csv or pdf.")
    frame = register_frame(register)
    if fmt == "csv":
        from batchops_core.pipeline.csv_out import write_csv

        write_atomic(path, lambda tmp: write_csv(frame, tmp))
        return {"path": str(path), "rows": len(frame)}
    from batchops_core.pipeline.pdf_out import write_pdf

    info: dict[str, Any] = {}
    totals = {s: int(frame[s].sum()) if len(frame) else 0 for s in TOTALS}

    def render(tmp: Path) -> None:
        info.update(
            write_pdf(
                tmp,
                title=register.title,
                metadata=[
                    ("Month", f"{register.month:%Y-%m}"),
                    ("Department", register.department or "all"),
                    ("Employees", str(len(frame))),
                    ("Totals", ", ".join(f"{k} {v}" for k, v in totals.items())),
                ],
                table=frame.drop(columns=["department"]) if register.department else frame,
                max_rows=5000,
                notes=[
                    "P present, A absent, HD half day, WO week off, PH holiday, "
                    "MP missing punch; paid hours are the in/out pairs (man-days)."
                ],
                table_title="Register",
            )
        )

    write_atomic(path, render)
    return {"path": str(path), "rows": len(frame), **info}
