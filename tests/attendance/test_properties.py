"""Property tests (hypothesis): recompute is order-independent and idempotent, duplicates change
nothing, and the array engine agrees with the readable one-day rules."""

from __future__ import annotations

from datetime import date

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from batchops_core.attendance import rules as R
from batchops_core.attendance.processing import (
    DayArrays,
    PunchArrays,
    compute_days,
    day_number,
    employee_arrays,
)

FIRST = day_number(date(2026, 11, 1))
LAST = FIRST + 6
N_DAYS = LAST - FIRST + 1

shifts = st.builds(
    R.ShiftRule,
    start=st.integers(0, 1439),
    end=st.integers(0, 1439),
    grace_in=st.integers(0, 30),
    grace_out=st.integers(0, 30),
    half_day_minutes=st.integers(60, 300),
    full_day_minutes=st.integers(300, 600),
    overtime_after=st.integers(0, 60),
    overtime_before=st.integers(0, 60),
    lunch_minutes=st.integers(0, 60),
    week_off=st.frozensets(st.integers(0, 6), max_size=2),
)
punch_lists = st.lists(
    st.tuples(
        st.integers(0, 2),  # employee
        st.integers((FIRST - 1) * 1440, (LAST + 2) * 1440),  # minute
        st.sampled_from([1, 2, 3]),
        st.booleans(),
    ),
    max_size=60,
)


def _punches(items: list[tuple[int, int, int, bool]]) -> PunchArrays:
    return PunchArrays(
        employee=np.array([i[0] for i in items], np.int64),
        minute=np.array([i[1] for i in items], np.int64),
        bits=np.array([i[2] for i in items], np.int64),
        manual=np.array([i[3] for i in items], bool),
    )


def _compute(shift_list: list[R.ShiftRule], items: list[tuple[int, int, int, bool]]) -> DayArrays:
    emp = employee_arrays(list(range(3)), shift_list, [None] * 3, [None] * 3)
    holiday = np.zeros(N_DAYS, bool)
    holiday[2] = True
    return compute_days(emp, _punches(items), FIRST, LAST, holiday)


def _same(a: DayArrays, b: DayArrays) -> bool:
    return all(
        np.array_equal(getattr(a, f), getattr(b, f), equal_nan=f in {"in_min", "out_min"})
        for f in DayArrays.__dataclass_fields__
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(shifts, min_size=3, max_size=3), punch_lists, st.randoms())
def test_recompute_is_order_independent(shift_list, items, rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(items)
    rnd.shuffle(shuffled)
    assert _same(_compute(shift_list, items), _compute(shift_list, shuffled))


@settings(max_examples=150, deadline=None)
@given(st.lists(shifts, min_size=3, max_size=3), punch_lists)
def test_recompute_is_idempotent_and_a_duplicate_sync_changes_nothing(shift_list, items) -> None:  # type: ignore[no-untyped-def]
    once = _compute(shift_list, items)
    assert _same(once, _compute(shift_list, items))
    assert _same(once, _compute(shift_list, items + items))


@settings(max_examples=200, deadline=None)
@given(st.lists(shifts, min_size=3, max_size=3), punch_lists)
def test_engine_agrees_with_the_one_day_rules(shift_list, items) -> None:  # type: ignore[no-untyped-def]
    out = _compute(shift_list, items)
    assert len(out) == 3 * N_DAYS
    for row in range(len(out)):
        e, d = int(out.employee[row]), int(out.day[row])
        s = shift_list[e]
        mine: dict[float, int] = {}
        for emp, minute, bits, _ in items:
            if emp != e:
                continue
            cal, m = divmod(minute, 1440)
            day, rel = R.assign_day(cal, m, s.start, s.end)
            if rel == rel and day == d:
                mine[rel] = R.merge_directions([mine.get(rel, 0), bits])
        minutes, bits_list = list(mine), list(mine.values())
        assert out.punches[row] == len(mine)
        first_in, last_out = R.first_in_last_out(minutes, bits_list)
        assert np.array_equal([out.in_min[row], out.out_min[row]], [first_in, last_out], True)
        pairs = [(a, b) for r, a, b in zip(out.pair_row, out.pair_in, out.pair_out, strict=True)]
        want = R.pairs(sorted(minutes), [mine[m] for m in sorted(minutes)])
        assert [(a, b) for r, (a, b) in zip(out.pair_row, pairs, strict=True) if r == row] == want
        done = R.complete(first_in, last_out)
        worked = R.work_minutes(first_in, last_out, s.lunch_minutes, s.half_day_minutes)
        assert out.work[row] == worked
        rest = d - FIRST == 2 or (d + 3) % 7 in s.week_off
        status = R.day_status(
            d - FIRST == 2,
            rest,
            len(mine),
            done,
            worked,
            s.half_day_minutes,
            s.full_day_minutes,
        )
        assert out.status[row] == status
        if rest:
            assert out.overtime[row] == worked and out.late[row] == 0
        elif done:
            assert out.late[row] == R.late_minutes(first_in, s.start, s.grace_in)
