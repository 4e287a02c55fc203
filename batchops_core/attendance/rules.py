"""The attendance rules, each one pure function over numbers.

Why numbers and numpy: the same function decides one day in a unit test (`late_minutes(545, 540,
10)`) and 62,000 days at once in `processing.py` (arrays in, arrays out), so the rule that is
tested is the rule that runs — there is no second, "fast" copy to drift away from it.

Conventions:
* Times are minutes relative to the midnight that starts the attendance day (the date the shift
  **starts**): a night shift 22:00–06:00 runs from 1320 to 1800. A missing time is NaN.
* Punch directions are bit masks: IN = 1 (may open a day), OUT = 2 (may close it), BOTH = 3.
* Hours thresholds are held in minutes (`half_day_minutes`, `full_day_minutes`).
* Punches are compared at the minute: devices repeat a punch within the same minute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from batchops_core.attendance.enums import STATUS_ORDER, DayStatus

MINUTES_PER_DAY = 1440
WINDOW_BEFORE = 4 * 60
"""A punch up to 4 h before the shift start counts for the day."""
WINDOW_AFTER = 8 * 60
"""… and up to 8 h after its end."""
MAX_PAIRS = 10

IN_BIT, OUT_BIT = 1, 2

P, A, HD, WO, PH, MP = (STATUS_ORDER.index(s) for s in DayStatus)
"""Integer codes of the statuses, in `STATUS_ORDER`."""

RULES: tuple[str, ...] = (
    "a public or school holiday",
    "a week-off day",
    "no punch on the day",
    "a missing punch: an in without an out, or an out without an in",
    "worked at least the full-day hours",
    "worked at least the half-day hours",
    "worked less than the half-day hours",
)
"""Why a day got its status, by the index `status_rule` returns."""


@dataclass(frozen=True)
class ShiftRule:
    """The figures of one shift; minutes throughout (start/end are minutes of the day)."""

    start: int
    end: int
    grace_in: int = 10
    grace_out: int = 10
    half_day_minutes: int = 180
    full_day_minutes: int = 360
    overtime_after: int = 30
    overtime_before: int = 0
    """0: arriving early never earns overtime; N > 0: more than N minutes early all count."""
    lunch_minutes: int = 30
    week_off: frozenset[int] = field(default_factory=lambda: frozenset({5, 6}))
    """Weekdays off, Monday = 0."""

    @property
    def end_rel(self) -> int:
        return int(shift_end(self.start, self.end))


def _num(value: Any) -> Any:
    """A 0-d numpy result becomes a Python scalar; arrays stay arrays."""
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value.item()
    return value


def shift_end(start: Any, end: Any) -> Any:
    """The end relative to the day's midnight: before (or at) the start means the next day."""
    start, end = np.asarray(start), np.asarray(end)
    return _num(np.where(end <= start, end + MINUTES_PER_DAY, end))


def _distance(rel: np.ndarray, start: np.ndarray, end_rel: np.ndarray) -> np.ndarray:
    return np.maximum(np.maximum(start - rel, rel - end_rel), 0)


def assign_day(day: Any, minute: Any, start: Any, end: Any) -> tuple[Any, Any]:
    """Which attendance day a punch belongs to, and its minute relative to that day.

    `day` is the punch's calendar day (any integer day number), `minute` its minute of the day.
    Candidates are the day before, the same day and the day after; a candidate counts when the
    punch lies in its window (4 h before the start to 8 h after the end). When two windows hold
    the punch (a 16-hour shift), the day whose shift is nearer wins, and on a tie the earlier.
    Returns (day, relative minute), or (day, NaN) when no window holds the punch.
    """
    day, minute = np.asarray(day, dtype=np.int64), np.asarray(minute, dtype=np.float64)
    start = np.asarray(start, dtype=np.float64)
    end_rel = np.asarray(shift_end(start, np.asarray(end, dtype=np.float64)), dtype=np.float64)
    best_rel = np.full(np.broadcast(day, minute, start).shape, np.nan)
    best_day = np.broadcast_to(day, best_rel.shape).copy()
    best_dist = np.full(best_rel.shape, np.inf)
    for offset in (-1, 0, 1):  # three candidates, each a whole-array step
        rel = minute - offset * MINUTES_PER_DAY
        inside = (rel >= start - WINDOW_BEFORE) & (rel <= end_rel + WINDOW_AFTER)
        dist = np.where(inside, _distance(rel, start, end_rel), np.inf)
        better = dist < best_dist
        best_rel = np.where(better, rel, best_rel)
        best_day = np.where(better, day + offset, best_day)
        best_dist = np.where(better, dist, best_dist)
    return _num(best_day), _num(best_rel)


def merge_directions(bits: Sequence[int]) -> int:
    """Punches in the same minute count once; IN and OUT in one minute make a BOTH."""
    merged = 0
    for b in bits:
        merged |= int(b)
    return merged


def first_in_last_out(minutes: Sequence[float], bits: Sequence[int]) -> tuple[float, float]:
    """The first punch that may open the day and the last that may close it (NaN if none).

    With IN/OUT: the first IN and the last OUT. With BOTH: the first punch and the last punch.
    """
    ins = [m for m, b in zip(minutes, bits, strict=True) if b & IN_BIT]
    outs = [m for m, b in zip(minutes, bits, strict=True) if b & OUT_BIT]
    return (min(ins) if ins else np.nan), (max(outs) if outs else np.nan)


def complete(in_min: Any, out_min: Any) -> Any:
    """Both ends known and the out after the in; otherwise the day has a missing punch."""
    i, o = np.asarray(in_min, dtype=float), np.asarray(out_min, dtype=float)
    return _num(~np.isnan(i) & ~np.isnan(o) & (o > np.where(np.isnan(i), np.inf, i)))


def work_minutes(in_min: Any, out_min: Any, lunch: Any, half_day: Any) -> Any:
    """out − in, less the lunch break once the day reaches the half-day hours; 0 if incomplete."""
    done = np.asarray(complete(in_min, out_min))
    raw = np.where(done, np.nan_to_num(np.asarray(out_min, float) - np.asarray(in_min, float)), 0)
    worked = np.where(raw >= np.asarray(half_day), np.maximum(raw - np.asarray(lunch), 0), raw)
    return _num(worked.astype(np.int64))


def late_minutes(in_min: Any, start: Any, grace: Any) -> Any:
    """in − start when that exceeds the grace (then the whole lateness counts), else 0."""
    late = np.nan_to_num(np.asarray(in_min, float) - np.asarray(start, float), nan=0.0)
    return _num(np.where(late > np.asarray(grace), late, 0).astype(np.int64))


def early_exit_minutes(out_min: Any, end_rel: Any, grace: Any) -> Any:
    """end − out when that exceeds the grace (then all of it counts), else 0."""
    early = np.nan_to_num(np.asarray(end_rel, float) - np.asarray(out_min, float), nan=0.0)
    return _num(np.where(early > np.asarray(grace), early, 0).astype(np.int64))


def overtime_minutes(
    in_min: Any, out_min: Any, start: Any, end_rel: Any, after: Any, before: Any
) -> Any:
    """Minutes past the end beyond `after` (then all count), plus minutes before the start
    beyond `before` (then all count) when `before` is set (> 0)."""
    post = np.nan_to_num(np.asarray(out_min, float) - np.asarray(end_rel, float), nan=0.0)
    pre = np.nan_to_num(np.asarray(start, float) - np.asarray(in_min, float), nan=0.0)
    before = np.asarray(before)
    total = np.where(post > np.asarray(after), post, 0) + np.where(
        (before > 0) & (pre > before), pre, 0
    )
    return _num(total.astype(np.int64))


def status_rule(
    holiday: Any, week_off: Any, punches: Any, done: Any, worked: Any, half: Any, full: Any
) -> Any:
    """The index in `RULES` that decides the day (holiday first, then week off, then punches)."""
    conditions = [
        np.asarray(holiday, bool),
        np.asarray(week_off, bool),
        np.asarray(punches) == 0,
        ~np.asarray(done, bool),
        np.asarray(worked) >= np.asarray(full),
        np.asarray(worked) >= np.asarray(half),
    ]
    return _num(np.select(conditions, [0, 1, 2, 3, 4, 5], 6).astype(np.int8))


RULE_STATUS = np.array([PH, WO, A, MP, P, HD, A], dtype=np.int8)
"""The status each rule gives."""


def day_status(
    holiday: Any, week_off: Any, punches: Any, done: Any, worked: Any, half: Any, full: Any
) -> Any:
    """PH, WO, A (no punch), MP (missing punch), P (≥ full day), HD (≥ half day), else A."""
    rule = status_rule(holiday, week_off, punches, done, worked, half, full)
    return _num(RULE_STATUS[np.asarray(rule)])


def pair_roles(bits: Sequence[int]) -> list[bool]:
    """True where a punch opens a pair: IN always; BOTH at an even position of the day."""
    return [b == IN_BIT or (b == IN_BIT | OUT_BIT and i % 2 == 0) for i, b in enumerate(bits)]


def pairs(minutes: Sequence[float], bits: Sequence[int]) -> list[tuple[float, float]]:
    """Up to 10 in/out pairs of one day (man-days for staff paid by the hour).

    The day's distinct punches in time order: each opening punch starts a pair; the last
    closing punch before the next opening one ends it. A pair without an end, or an end
    without a start, is left out; only the first 10 pairs are kept.
    """
    order = sorted(range(len(minutes)), key=lambda i: minutes[i])
    ms, bs = [minutes[i] for i in order], [bits[i] for i in order]
    found: list[tuple[float, float]] = []
    opened: float | None = None
    closed: float | None = None
    count = 0
    for m, is_open, b in zip(ms, pair_roles(bs), bs, strict=True):
        if is_open:
            if opened is not None and closed is not None and count <= MAX_PAIRS:
                found.append((opened, closed))
            opened, closed, count = m, None, count + 1
        elif b & OUT_BIT and opened is not None and m > opened:
            closed = m
    if opened is not None and closed is not None and count <= MAX_PAIRS:
        found.append((opened, closed))
    return found


def awo_targets(statuses: Sequence[str]) -> list[int]:
    """Indices of week-off or holiday days sandwiched between two absences (A–WO–A).

    `statuses` are one employee's consecutive days in order. A run of WO/PH days counts when
    the day just before the run and the day just after it are both A.
    """
    targets: list[int] = []
    i = 0
    off = {DayStatus.WEEK_OFF.value, DayStatus.HOLIDAY.value}
    while i < len(statuses):
        if statuses[i] in off:
            j = i
            while j < len(statuses) and statuses[j] in off:
                j += 1
            absent = DayStatus.ABSENT.value
            if i > 0 and j < len(statuses) and statuses[i - 1] == absent == statuses[j]:
                targets.extend(range(i, j))
            i = j
        else:
            i += 1
    return targets
