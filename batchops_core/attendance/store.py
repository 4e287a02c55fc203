"""The reading side of processing: employees, holidays and punches from the database as arrays.

Employees come with their shift figures; punches are the countable ones (device punches and
approved manual ones) of the range plus the windows around it. Writing is `daywrite.py`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, time, timedelta

import numpy as np
from sqlalchemy import select

from batchops_core.attendance import processing as PR
from batchops_core.attendance import rules as R
from batchops_core.attendance.enums import (
    HolidayType,
)
from batchops_core.attendance.models import (
    Employee,
    Holiday,
    Shift,
)
from batchops_core.attendance.views import shift_rule
from batchops_core.infra.db import UnitOfWork

CHUNK = 500


async def load_employees(
    uow: UnitOfWork, first: date, last: date, ids: Collection[int] | None = None
) -> PR.EmployeeArrays:
    """Employees employed at some point of [first, last], sorted by id."""
    query = (
        select(Employee.id, Employee.joined, Employee.left, Shift)
        .join(Shift, Shift.id == Employee.shift_id)
        .where(
            (Employee.joined.is_(None)) | (Employee.joined <= last),
            (Employee.left.is_(None)) | (Employee.left >= first),
        )
        .order_by(Employee.id)
    )
    if ids is not None:
        query = query.where(Employee.id.in_(list(ids)))
    rows = (await uow.execute(query)).all()
    return PR.employee_arrays(
        [r[0] for r in rows],
        [shift_rule(r[3]) for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
    )


async def load_holidays(uow: UnitOfWork, first: date, last: date) -> tuple[np.ndarray, np.ndarray]:
    """(holiday, festival) per day of [first, last]: public and school holidays make PH."""
    n = (last - first).days + 1
    holiday, festival = np.zeros(n, bool), np.zeros(n, bool)
    rows = await uow.execute(
        select(Holiday.day, Holiday.type).where(Holiday.day >= first, Holiday.day <= last)
    )
    for day, kind in rows:
        (festival if kind == HolidayType.FESTIVAL else holiday)[(day - first).days] = True
    return holiday, festival


def punch_window(first: date, last: date) -> tuple[datetime, datetime]:
    """Every punch that can belong to a day of [first, last] lies in this half-open range."""
    return (
        datetime.combine(first - timedelta(days=1), time()),
        datetime.combine(last + timedelta(days=3), time()),
    )


_PUNCH_SQL = {
    "sqlite": (
        "SELECT employee_id, CAST(strftime('%s', punched_at) AS INTEGER) / 60, "
        "CASE direction WHEN 'IN' THEN 1 WHEN 'OUT' THEN 2 ELSE 3 END, manual "
        "FROM attendance_punches WHERE approval = 'approved' AND punched_at >= ? "
        "AND punched_at < ?"
    ),
    "postgresql": (
        "SELECT employee_id, CAST(EXTRACT(EPOCH FROM punched_at) AS BIGINT) / 60, "
        "CASE direction WHEN 'IN' THEN 1 WHEN 'OUT' THEN 2 ELSE 3 END, manual::int "
        "FROM attendance_punches WHERE approval = 'approved' AND punched_at >= $1 "
        "AND punched_at < $2"
    ),
}


async def load_punches(
    uow: UnitOfWork, emp: PR.EmployeeArrays, first: date, last: date
) -> PR.PunchArrays:
    """The countable punches around [first, last] as integer arrays.

    Read through the driver with the minute number and direction code computed by the database:
    measured on 231k punches, SQLAlchemy's row objects cost ~1.5 s to fetch and numpy ~7 s to
    read them, the driver's plain tuples 0.5 s and 0.1 s (bench/bench_attendance.py). Same
    connection, same transaction.
    """
    low, high = punch_window(first, last)
    conn = await uow.connection()
    raw = (await conn.get_raw_connection()).driver_connection
    name = conn.dialect.name
    if name == "postgresql":
        rows = await raw.fetch(_PUNCH_SQL[name], low, high)
    else:
        fmt = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a naive DateTime in SQLite
        cursor = await raw.execute(_PUNCH_SQL["sqlite"], (low.strftime(fmt), high.strftime(fmt)))
        rows = await cursor.fetchall()
        await cursor.close()
    table = np.array(rows, dtype=np.int64).reshape(-1, 4)
    pos, known = positions(emp.ids, table[:, 0])
    return PR.PunchArrays(
        employee=pos[known],
        minute=table[known, 1],
        bits=table[known, 2],
        manual=table[known, 3].astype(bool),
    )


def positions(ids: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each value in the sorted `ids`, and which values are there at all."""
    if not len(ids):
        return np.zeros(len(values), np.int64), np.zeros(len(values), bool)
    pos = np.searchsorted(ids, values)
    return pos, (pos < len(ids)) & (ids[np.minimum(pos, len(ids) - 1)] == values)


def rule_text(rule: int) -> str:
    return R.RULES[rule] if 0 <= rule < len(R.RULES) else ""
