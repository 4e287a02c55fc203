"""From punches to days for many employees at once: numpy over whole arrays, no loop per punch.

The engine knows no database: `services` hands it arrays (one entry per employee, one per
countable punch) and writes back what it returns, so the benchmark and the property tests run
the very code the service runs. Every decision is a function of `rules.py` applied to arrays.

Steps: each punch finds its attendance day (`rules.assign_day`); punches are sorted by
(employee, day, minute) with one integer key, so duplicates of a minute are neighbours and
merge (`np.bitwise_or.reduceat`) and each day's punches are one contiguous slice; first in /
last out and the man-day pairs are `reduceat` over those slices; the grid of (employee, day)
rows between joining and leaving gets its figures by direct indexing. Sorting makes the result
independent of the punches' order, and nothing depends on earlier results, so recomputing is
idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np

from batchops_core.attendance import rules as R
from batchops_core.attendance.enums import Flag

SPAN = 4 * R.MINUTES_PER_DAY
"""Relative minutes lie within (-1 day, +3 days) of the day's midnight: key room per day."""
NO_DAY = np.iinfo(np.int64).min // 4


@dataclass(frozen=True)
class EmployeeArrays:
    """One entry per employee; shift figures already resolved per employee (minutes)."""

    ids: np.ndarray
    start: np.ndarray
    end: np.ndarray
    grace_in: np.ndarray
    grace_out: np.ndarray
    half_day: np.ndarray
    full_day: np.ndarray
    overtime_after: np.ndarray
    overtime_before: np.ndarray
    lunch: np.ndarray
    week_off: np.ndarray
    """Bit `1 << weekday` set for each weekday off (Monday = 0)."""
    joined: np.ndarray
    """Day numbers (days since 1970-01-01); no date = a very small number."""
    left: np.ndarray


@dataclass(frozen=True)
class PunchArrays:
    """Countable punches only (device punches and approved manual ones)."""

    employee: np.ndarray
    """Position in `EmployeeArrays`, not the database id."""
    minute: np.ndarray
    """Local wall-clock minutes since 1970-01-01 00:00."""
    bits: np.ndarray
    manual: np.ndarray


@dataclass(frozen=True)
class DayArrays:
    """One entry per (employee, day) row; times relative to the day's midnight (NaN: none)."""

    employee: np.ndarray
    day: np.ndarray
    status: np.ndarray
    rule: np.ndarray
    in_min: np.ndarray
    out_min: np.ndarray
    work: np.ndarray
    late: np.ndarray
    early: np.ndarray
    overtime: np.ndarray
    punches: np.ndarray
    flags: np.ndarray
    pair_minutes: np.ndarray
    pair_row: np.ndarray
    """Per pair: index of its row in these arrays."""
    pair_in: np.ndarray
    pair_out: np.ndarray

    def __len__(self) -> int:
        return len(self.day)


def weekday(day: np.ndarray) -> np.ndarray:
    """Monday = 0 for day numbers since 1970-01-01 (a Thursday)."""
    return (day + 3) % 7


def _grid(emp: EmployeeArrays, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
    n_days = last - first + 1
    e = np.repeat(np.arange(len(emp.ids), dtype=np.int64), n_days)
    d = np.tile(np.arange(first, last + 1, dtype=np.int64), len(emp.ids))
    keep = (d >= emp.joined[e]) & (d <= emp.left[e])
    return e[keep], d[keep]


def _day_punches(
    emp: EmployeeArrays, pun: PunchArrays, first: int, last: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (day slot, minute) punches sorted by key: slot, minute, merged bits, manual."""
    e = pun.employee.astype(np.int64)
    cal_day, minute = np.divmod(pun.minute.astype(np.int64), R.MINUTES_PER_DAY)
    day, rel = R.assign_day(cal_day, minute, emp.start[e], emp.end[e])
    day, rel = np.asarray(day), np.asarray(rel)
    ok = ~np.isnan(rel) & (day >= first) & (day <= last)
    n_days = last - first + 1
    slot = e[ok] * n_days + (day[ok] - first)
    key = slot * SPAN + (rel[ok].astype(np.int64) + R.MINUTES_PER_DAY)
    order = np.argsort(key, kind="stable")
    key, bits, manual = key[order], pun.bits[ok][order], pun.manual[ok][order]
    if len(key) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.astype(float), empty, empty.astype(bool)
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    merged = np.bitwise_or.reduceat(bits.astype(np.int64), starts)
    any_manual = np.logical_or.reduceat(manual.astype(bool), starts)
    ukey = key[starts]
    return ukey // SPAN, (ukey % SPAN - R.MINUTES_PER_DAY).astype(float), merged, any_manual


def _pairs(
    group_start: np.ndarray, group_of: np.ndarray, rel: np.ndarray, bits: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Man-day pairs, vectorized like `rules.pairs`: (group, in, out) per complete pair."""
    rank = np.arange(len(rel)) - group_start[group_of]
    opens = (bits == R.IN_BIT) | ((bits == R.IN_BIT | R.OUT_BIT) & (rank % 2 == 0))
    closes = ~opens & ((bits & R.OUT_BIT) > 0)
    cum = np.cumsum(opens)
    before_group = cum[group_start] - opens[group_start]
    pair_no = cum - before_group[group_of] - 1
    keep = (pair_no >= 0) & (pair_no < R.MAX_PAIRS)
    if not keep.any():
        z = np.zeros(0)
        return z.astype(np.int64), z, z
    pkey = group_of[keep] * R.MAX_PAIRS + pair_no[keep]
    starts = np.flatnonzero(np.r_[True, pkey[1:] != pkey[:-1]])
    p_in = np.fmin.reduceat(np.where(opens[keep], rel[keep], np.nan), starts)
    p_out = np.fmax.reduceat(np.where(closes[keep], rel[keep], np.nan), starts)
    good = ~np.isnan(p_in) & ~np.isnan(p_out) & (p_out > np.nan_to_num(p_in, nan=np.inf))
    return (pkey[starts] // R.MAX_PAIRS)[good], p_in[good], p_out[good]


def compute_days(
    emp: EmployeeArrays,
    pun: PunchArrays,
    first: int,
    last: int,
    holiday: np.ndarray,
    festival: np.ndarray | None = None,
) -> DayArrays:
    """Every (employee, day) row in [first, last]; `holiday[i]` for day `first + i`."""
    n_days = last - first + 1
    festival = np.zeros(n_days, bool) if festival is None else festival
    g_emp, g_day = _grid(emp, first, last)
    g_slot = g_emp * n_days + (g_day - first)
    slot_row = np.full(len(emp.ids) * n_days, -1, dtype=np.int64)
    slot_row[g_slot] = np.arange(len(g_slot))

    p_slot, p_rel, p_bits, p_manual = _day_punches(emp, pun, first, last)
    p_row = slot_row[p_slot]
    live = p_row >= 0  # punches on days before joining or after leaving make no row
    p_row, p_rel, p_bits, p_manual = p_row[live], p_rel[live], p_bits[live], p_manual[live]
    n = len(g_slot)
    in_min, out_min = np.full(n, np.nan), np.full(n, np.nan)
    count, manual = np.zeros(n, np.int64), np.zeros(n, bool)
    pair_row, pair_in, pair_out = np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    if len(p_row):
        starts = np.flatnonzero(np.r_[True, p_row[1:] != p_row[:-1]])
        rows = p_row[starts]
        in_min[rows] = np.fmin.reduceat(np.where(p_bits & R.IN_BIT, p_rel, np.nan), starts)
        out_min[rows] = np.fmax.reduceat(np.where(p_bits & R.OUT_BIT, p_rel, np.nan), starts)
        count[rows] = np.diff(np.r_[starts, len(p_row)])
        manual[rows] = np.logical_or.reduceat(p_manual, starts)
        group_of = np.cumsum(np.r_[True, p_row[1:] != p_row[:-1]]) - 1
        pg, pair_in, pair_out = _pairs(starts, group_of, p_rel, p_bits)
        pair_row = rows[pg]

    e = g_emp
    start, end_rel = emp.start[e], R.shift_end(emp.start[e], emp.end[e])
    day_idx = g_day - first
    is_holiday = holiday[day_idx]
    is_festival = festival[day_idx] & ~is_holiday
    is_off = ((emp.week_off[e] >> weekday(g_day)) & 1).astype(bool) & ~is_holiday
    done = np.asarray(R.complete(in_min, out_min))
    worked = np.asarray(R.work_minutes(in_min, out_min, emp.lunch[e], emp.half_day[e]))
    rule = np.asarray(
        R.status_rule(is_holiday, is_off, count, done, worked, emp.half_day[e], emp.full_day[e])
    )
    status = R.RULE_STATUS[rule]
    rest = is_holiday | is_off
    figured = done & ~rest
    late = np.where(figured, R.late_minutes(in_min, start, emp.grace_in[e]), 0)
    early = np.where(figured, R.early_exit_minutes(out_min, end_rel, emp.grace_out[e]), 0)
    overtime = np.where(
        rest,
        worked,
        np.where(
            figured,
            R.overtime_minutes(
                in_min, out_min, start, end_rel, emp.overtime_after[e], emp.overtime_before[e]
            ),
            0,
        ),
    )
    flags = (
        np.where(late > 0, Flag.LATE, 0)
        | np.where(early > 0, Flag.EARLY_EXIT, 0)
        | np.where(overtime > 0, Flag.OVERTIME, 0)
        | np.where((count > 0) & ~done, Flag.MISSING_PUNCH, 0)
        | np.where(is_holiday & (count > 0), Flag.WORKED_HOLIDAY, 0)
        | np.where(is_off & (count > 0), Flag.WORKED_WEEK_OFF, 0)
        | np.where(manual, Flag.MANUAL, 0)
        | np.where(is_festival, Flag.FESTIVAL, 0)
    ).astype(np.int64)
    pair_minutes = np.bincount(pair_row, weights=pair_out - pair_in, minlength=n).astype(np.int64)
    return DayArrays(
        employee=g_emp,
        day=g_day,
        status=status,
        rule=rule,
        in_min=in_min,
        out_min=out_min,
        work=worked,
        late=np.asarray(late, np.int64),
        early=np.asarray(early, np.int64),
        overtime=np.asarray(overtime, np.int64),
        punches=count,
        flags=flags,
        pair_minutes=pair_minutes,
        pair_row=pair_row,
        pair_in=pair_in,
        pair_out=pair_out,
    )


EPOCH = date(1970, 1, 1)
FAR = 10**7


def day_number(value: date) -> int:
    return (value - EPOCH).days


def day_of(number: int) -> date:
    return EPOCH + timedelta(days=int(number))


def minute_number(value: datetime) -> int:
    """Wall-clock minutes since 1970-01-01 00:00 (seconds dropped: punches count per minute)."""
    naive = value.replace(tzinfo=None)
    return day_number(naive.date()) * R.MINUTES_PER_DAY + naive.hour * 60 + naive.minute


def clock(day: int, rel: float) -> datetime | None:
    """The wall-clock time of a relative minute of a day (None for NaN)."""
    if rel != rel:  # NaN
        return None
    return datetime.combine(day_of(day), time()) + timedelta(minutes=int(rel))


def employee_arrays(
    ids: Sequence[int],
    shifts: Sequence[R.ShiftRule],
    joined: Sequence[date | None],
    left: Sequence[date | None],
) -> EmployeeArrays:
    """Arrays for the engine from per-employee shift rules and dates."""

    def col(name: str) -> np.ndarray:
        return np.array([getattr(s, name) for s in shifts], dtype=np.int64)

    return EmployeeArrays(
        ids=np.asarray(ids, dtype=np.int64),
        start=col("start"),
        end=col("end"),
        grace_in=col("grace_in"),
        grace_out=col("grace_out"),
        half_day=col("half_day_minutes"),
        full_day=col("full_day_minutes"),
        overtime_after=col("overtime_after"),
        overtime_before=col("overtime_before"),
        lunch=col("lunch_minutes"),
        week_off=np.array([sum(1 << d for d in s.week_off) for s in shifts], dtype=np.int64),
        joined=np.array([-FAR if d is None else day_number(d) for d in joined], dtype=np.int64),
        left=np.array([FAR if d is None else day_number(d) for d in left], dtype=np.int64),
    )
