"""The database side of processing: rows in as arrays, computed days out as the fewest writes.

Reading: employees with their shift figures, holidays, and the countable punches (device punches
and approved manual ones) of the range plus the windows around it. Writing compares every
computed day with the stored one and inserts, updates or deletes only what differs, so a
second run over the same range writes nothing and says so (idempotent, and cheap to repeat).
Active A–WO–A corrections are laid over the computed status while their premise holds.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import bindparam, delete, insert, select, update

from batchops_core.attendance import processing as PR
from batchops_core.attendance import rules as R
from batchops_core.attendance.enums import (
    DIRECTION_BITS,
    STATUS_ORDER,
    Approval,
    Direction,
    Flag,
    HolidayType,
    flag_names,
)
from batchops_core.attendance.models import (
    AttendanceDay,
    Correction,
    Employee,
    Holiday,
    Punch,
    Shift,
)
from batchops_core.attendance.views import shift_rule
from batchops_core.infra.clock import utcnow
from batchops_core.infra.db import UnitOfWork

CHUNK = 500
VALUE_COLUMNS = (
    "status",
    "computed_status",
    "rule",
    "in_time",
    "out_time",
    "work_minutes",
    "late_minutes",
    "early_exit_minutes",
    "overtime_minutes",
    "punch_count",
    "flags",
    "pairs",
    "pair_minutes",
)


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


async def load_punches(
    uow: UnitOfWork, emp: PR.EmployeeArrays, first: date, last: date
) -> PR.PunchArrays:
    low, high = punch_window(first, last)
    query = select(Punch.employee_id, Punch.punched_at, Punch.direction, Punch.manual).where(
        Punch.approval == Approval.APPROVED, Punch.punched_at >= low, Punch.punched_at < high
    )
    if len(emp.ids) <= CHUNK:
        query = query.where(Punch.employee_id.in_(emp.ids.tolist()))
    rows = (await uow.execute(query)).all()
    return punch_arrays(emp, rows)


def punch_arrays(emp: PR.EmployeeArrays, rows: Sequence[tuple[Any, ...]]) -> PR.PunchArrays:
    """(employee id, local datetime, direction, manual) tuples → arrays for known employees."""
    if not rows:
        z = np.zeros(0, np.int64)
        return PR.PunchArrays(employee=z, minute=z, bits=z, manual=z.astype(bool))
    ids, stamps, dirs, manual = zip(*rows, strict=True)
    ids_a = np.asarray(ids, np.int64)
    pos = np.searchsorted(emp.ids, ids_a)
    known = (pos < len(emp.ids)) & (emp.ids[np.minimum(pos, len(emp.ids) - 1)] == ids_a)
    minute = np.array(stamps, dtype="datetime64[m]").astype(np.int64)
    dir_a = np.asarray([str(d) for d in dirs])
    bits = np.where(
        dir_a == Direction.IN.value, DIRECTION_BITS[Direction.IN], DIRECTION_BITS[Direction.BOTH]
    )
    bits = np.where(dir_a == Direction.OUT.value, DIRECTION_BITS[Direction.OUT], bits)
    return PR.PunchArrays(
        employee=pos[known],
        minute=minute[known],
        bits=bits[known].astype(np.int64),
        manual=np.asarray(manual, bool)[known],
    )


def _hhmm(rel: float) -> str:
    minutes = int(rel)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def day_values(out: PR.DayArrays, emp: PR.EmployeeArrays) -> dict[tuple[int, date], dict[str, Any]]:
    """{(employee id, date): column values} for every computed row."""
    pairs: list[list[list[Any]]] = [[] for _ in range(len(out))]
    for row, a, b in zip(
        out.pair_row.tolist(), out.pair_in.tolist(), out.pair_out.tolist(), strict=True
    ):
        pairs[row].append([_hhmm(a), _hhmm(b), int(b - a)])
    values: dict[tuple[int, date], dict[str, Any]] = {}
    cols = zip(
        emp.ids[out.employee].tolist(),
        out.day.tolist(),
        out.status.tolist(),
        out.rule.tolist(),
        out.in_min.tolist(),
        out.out_min.tolist(),
        out.work.tolist(),
        out.late.tolist(),
        out.early.tolist(),
        out.overtime.tolist(),
        out.punches.tolist(),
        out.flags.tolist(),
        out.pair_minutes.tolist(),
        pairs,
        strict=True,
    )
    for eid, day, st, rule, i, o, w, la, ea, ot, n, fl, pm, pr in cols:
        status = STATUS_ORDER[st]
        values[(eid, PR.day_of(day))] = {
            "status": status,
            "computed_status": status,
            "rule": rule,
            "in_time": PR.clock(day, i),
            "out_time": PR.clock(day, o),
            "work_minutes": w,
            "late_minutes": la,
            "early_exit_minutes": ea,
            "overtime_minutes": ot,
            "punch_count": n,
            "flags": flag_names(fl),
            "pairs": pr,
            "pair_minutes": pm,
        }
    return values


async def apply_corrections(
    uow: UnitOfWork, values: dict[tuple[int, date], dict[str, Any]], first: date, last: date
) -> None:
    """Lay active corrections over the computed status while the computed status is still the
    one the correction changed (a day worked after all drops the correction's effect)."""
    rows = await uow.execute(
        select(Correction.employee_id, Correction.day, Correction.before, Correction.after).where(
            Correction.active.is_(True), Correction.day >= first, Correction.day <= last
        )
    )
    for eid, day, before, after in rows:
        current = values.get((eid, day))
        if current is not None and current["computed_status"] == before:
            current["status"] = after
            current["flags"] = flag_names(_mask(current["flags"]) | Flag.AWO)


def _mask(names: list[str]) -> int:
    return sum(Flag[n.upper()].value for n in names)


async def write_days(
    uow: UnitOfWork,
    values: dict[tuple[int, date], dict[str, Any]],
    first: date,
    last: date,
    employee_ids: Collection[int] | None,
    only: Collection[tuple[int, date]] | None = None,
) -> tuple[int, int, int]:
    """Store `values` for [first, last] (all employees, or `employee_ids`); with `only`, touch
    just those (employee, day) keys. Returns (inserted, updated, deleted)."""
    query = select(AttendanceDay.id, AttendanceDay.employee_id, AttendanceDay.day).add_columns(
        *(getattr(AttendanceDay, c) for c in VALUE_COLUMNS)
    )
    query = query.where(AttendanceDay.day >= first, AttendanceDay.day <= last)
    if employee_ids is not None and len(employee_ids) <= CHUNK:
        query = query.where(AttendanceDay.employee_id.in_(list(employee_ids)))
    wanted = set(only) if only is not None else None
    scope = set(employee_ids) if employee_ids is not None else None
    existing: dict[tuple[int, date], tuple[int, tuple[Any, ...]]] = {}
    for row in await uow.execute(query):
        key = (row[1], row[2])
        if (scope is None or row[1] in scope) and (wanted is None or key in wanted):
            existing[key] = (row[0], tuple(row[3:]))
    now = utcnow()
    inserts, updates = [], []
    for key, vals in values.items():
        if wanted is not None and key not in wanted:
            continue
        stored = existing.pop(key, None)
        current = tuple(vals[c] for c in VALUE_COLUMNS)
        if stored is None:
            inserts.append({"employee_id": key[0], "day": key[1], **vals, "computed_at": now})
        elif stored[1] != current:
            updates.append({"_id": stored[0], **vals, "computed_at": now})
    if inserts:
        await uow.execute(insert(AttendanceDay), inserts)
    if updates:
        table = AttendanceDay.__table__
        await uow.execute(
            update(table).where(table.c.id == bindparam("_id")),
            updates,
        )
    stale = [i for i, _ in existing.values()]
    for start in range(0, len(stale), CHUNK):
        await uow.execute(
            delete(AttendanceDay).where(AttendanceDay.id.in_(stale[start : start + CHUNK]))
        )
    return len(inserts), len(updates), len(stale)


def rule_text(rule: int) -> str:
    return R.RULES[rule] if 0 <= rule < len(R.RULES) else ""
