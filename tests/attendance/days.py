"""Run the array engine for one employee from readable punches: a test's view of a day."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import numpy as np

from batchops_core.attendance.enums import DIRECTION_BITS, STATUS_ORDER, Direction, flag_names
from batchops_core.attendance.processing import (
    PunchArrays,
    clock,
    compute_days,
    day_number,
    employee_arrays,
    minute_number,
)
from batchops_core.attendance.rules import ShiftRule

DAY_SHIFT = ShiftRule(start=9 * 60, end=17 * 60)
NIGHT_SHIFT = ShiftRule(start=22 * 60, end=6 * 60, week_off=frozenset())


def punch(text: str, direction: str = "BOTH", manual: bool = False) -> tuple[datetime, str, bool]:
    return datetime.fromisoformat(text), direction, manual


def run(
    shift: ShiftRule,
    punches: list[tuple[datetime, str, bool]],
    first: date,
    last: date,
    *,
    holidays: set[date] = frozenset(),  # type: ignore[assignment]
    festivals: set[date] = frozenset(),  # type: ignore[assignment]
    joined: date | None = None,
    left: date | None = None,
) -> dict[date, dict[str, Any]]:
    """{date: row} for one employee with `shift` over [first, last]."""
    emp = employee_arrays([1], [shift], [joined], [left])
    pun = PunchArrays(
        employee=np.zeros(len(punches), np.int64),
        minute=np.array([minute_number(p[0]) for p in punches], np.int64),
        bits=np.array([DIRECTION_BITS[Direction(p[1])] for p in punches], np.int64),
        manual=np.array([p[2] for p in punches], bool),
    )
    f, n = day_number(first), day_number(last) - day_number(first) + 1
    holiday = np.zeros(n, bool)
    festival = np.zeros(n, bool)
    for d in holidays:
        holiday[day_number(d) - f] = True
    for d in festivals:
        festival[day_number(d) - f] = True
    out = compute_days(emp, pun, f, day_number(last), holiday, festival)
    rows: dict[date, dict[str, Any]] = {}
    for i in range(len(out)):
        d = int(out.day[i])
        pairs = [
            (clock(d, a), clock(d, b))
            for r, a, b in zip(out.pair_row, out.pair_in, out.pair_out, strict=True)
            if r == i
        ]
        rows[clock(d, 0).date()] = {  # type: ignore[union-attr]
            "status": STATUS_ORDER[int(out.status[i])].value,
            "in": clock(d, out.in_min[i]),
            "out": clock(d, out.out_min[i]),
            "work": int(out.work[i]),
            "late": int(out.late[i]),
            "early": int(out.early[i]),
            "overtime": int(out.overtime[i]),
            "punches": int(out.punches[i]),
            "flags": flag_names(int(out.flags[i])),
            "pairs": pairs,
            "pair_minutes": int(out.pair_minutes[i]),
        }
    return rows
