"""Every attendance rule with its boundaries: the pure functions, then whole days through them.

Monday 2026-11-02 is the reference day; the day shift is 09:00–17:00 with the issue's defaults
(grace 10/10, half day 3 h, full day 6 h, overtime after 30 min, lunch 30 min, Sat/Sun off).
"""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest

from batchops_core.attendance import rules as R
from batchops_core.attendance.enums import STATUS_ORDER, DayStatus
from tests.attendance.days import DAY_SHIFT, NIGHT_SHIFT, punch, run

MON, TUE = date(2026, 11, 2), date(2026, 11, 3)
SAT, SUN = date(2026, 11, 7), date(2026, 11, 8)
NAN = math.nan


def one(shift: R.ShiftRule, *punches: tuple[datetime, str, bool], day: date = MON, **kw: object):
    return run(shift, list(punches), day, day, **kw)[day]  # type: ignore[arg-type]


# --- the pure functions -------------------------------------------------------------------


def test_shift_end_crosses_midnight_when_before_or_at_the_start() -> None:
    assert R.shift_end(540, 1020) == 1020
    assert R.shift_end(1320, 360) == 1800
    assert R.shift_end(600, 600) == 2040


@pytest.mark.parametrize(
    ("day", "minute", "want_day", "want_rel"),
    [
        (10, 540, 10, 540),  # on time
        (10, 300, 10, 300),  # exactly 4 h before the start: still counts
        (10, 299, None, None),  # one minute earlier (and 11 h 59 after yesterday's end): none
        (11, 60, 10, 1500),  # 01:00 next morning = 8 h after 17:00: yesterday's
        (11, 61, None, None),  # 8 h 01 after the end and 3 h 59 before the next start: none
    ],
)
def test_assign_day_window_is_4h_before_start_to_8h_after_end(
    day: int, minute: int, want_day: int | None, want_rel: int | None
) -> None:
    got_day, rel = R.assign_day(day, minute, 540, 1020)
    if want_day is None:
        assert math.isnan(rel)
    else:
        assert (got_day, rel) == (want_day, want_rel)


def test_assign_day_night_shift_morning_punch_belongs_to_the_evening_before() -> None:
    assert R.assign_day(11, 355, 1320, 360) == (10, 1795)
    assert R.assign_day(10, 1318, 1320, 360) == (10, 1318)


def test_assign_day_two_windows_nearest_shift_wins_tie_goes_earlier() -> None:
    # 06:00–22:00: 03:00 is 5 h after yesterday's end and 3 h before today's start
    assert R.assign_day(11, 180, 360, 1320) == (11, 180)
    # 02:00 is 4 h from both: the earlier day keeps it
    assert R.assign_day(11, 120, 360, 1320) == (10, 1560)


def test_assign_day_works_on_arrays() -> None:
    days, rel = R.assign_day([10, 11], [540, 60], [540, 540], [1020, 1020])
    assert list(days) == [10, 10] and list(rel) == [540, 1500]


def test_merge_directions_in_and_out_in_one_minute_make_both() -> None:
    assert R.merge_directions([1, 1]) == 1
    assert R.merge_directions([1, 2]) == 3
    assert R.merge_directions([2]) == 2


def test_first_in_last_out_with_in_out_and_with_both() -> None:
    assert R.first_in_last_out([540, 600, 1000, 1030], [1, 1, 2, 2]) == (540, 1030)
    assert R.first_in_last_out([540, 700, 1030], [3, 3, 3]) == (540, 1030)
    i, o = R.first_in_last_out([540, 600], [1, 1])
    assert i == 540 and math.isnan(o)


def test_complete_needs_both_ends_and_out_after_in() -> None:
    assert R.complete(540, 1020) is True
    assert R.complete(540, 540) is False
    assert R.complete(600, 540) is False
    assert R.complete(NAN, 540) is False
    assert R.complete(540, NAN) is False


@pytest.mark.parametrize(
    ("in_min", "out_min", "want"),
    [
        (540, 1020, 450),  # 8 h less 30 min lunch
        (540, 720, 150),  # exactly the half day: lunch is taken off
        (540, 719, 179),  # one minute short: no lunch taken off
        (540, NAN, 0),
        (600, 540, 0),
    ],
)
def test_work_minutes(in_min: float, out_min: float, want: int) -> None:
    assert R.work_minutes(in_min, out_min, 30, 180) == want


@pytest.mark.parametrize(("in_min", "want"), [(540, 0), (549, 0), (550, 0), (551, 11), (480, 0)])
def test_late_minutes_grace_exactly_reached_is_not_late(in_min: int, want: int) -> None:
    assert R.late_minutes(in_min, 540, 10) == want


@pytest.mark.parametrize(
    ("out_min", "want"), [(1020, 0), (1010, 0), (1009, 11), (1100, 0), (NAN, 0)]
)
def test_early_exit_minutes_grace_exactly_reached_is_not_early(out_min: float, want: int) -> None:
    assert R.early_exit_minutes(out_min, 1020, 10) == want


@pytest.mark.parametrize(
    ("in_min", "out_min", "before", "want"),
    [
        (540, 1050, 0, 0),  # 30 min after: exactly the threshold, none
        (540, 1051, 0, 31),  # past it: all 31 count
        (480, 1020, 0, 0),  # early arrival, overtime-before not set
        (480, 1020, 30, 60),  # 60 early > 30: all 60 count
        (510, 1020, 30, 0),  # 30 early: exactly the threshold, none
        (480, 1100, 30, 140),  # both sides
    ],
)
def test_overtime_minutes(in_min: int, out_min: int, before: int, want: int) -> None:
    assert R.overtime_minutes(in_min, out_min, 540, 1020, 30, before) == want


@pytest.mark.parametrize(
    ("holiday", "off", "punches", "done", "worked", "want"),
    [
        (True, True, 2, True, 500, DayStatus.HOLIDAY),
        (False, True, 2, True, 500, DayStatus.WEEK_OFF),
        (False, False, 0, False, 0, DayStatus.ABSENT),
        (False, False, 1, False, 0, DayStatus.MISSING_PUNCH),
        (False, False, 2, True, 360, DayStatus.PRESENT),
        (False, False, 2, True, 359, DayStatus.HALF_DAY),
        (False, False, 2, True, 180, DayStatus.HALF_DAY),
        (False, False, 2, True, 179, DayStatus.ABSENT),
    ],
)
def test_day_status_order_and_thresholds(
    holiday: bool, off: bool, punches: int, done: bool, worked: int, want: DayStatus
) -> None:
    code = R.day_status(holiday, off, punches, done, worked, 180, 360)
    assert STATUS_ORDER[code] == want
    assert R.RULES[R.status_rule(holiday, off, punches, done, worked, 180, 360)]


def test_pairs_in_out_and_both() -> None:
    assert R.pairs([540, 720, 750, 1020], [1, 2, 1, 2]) == [(540, 720), (750, 1020)]
    assert R.pairs([540, 720, 750, 1020], [3, 3, 3, 3]) == [(540, 720), (750, 1020)]
    assert R.pairs([1020, 540, 750, 720], [3, 3, 3, 3]) == [(540, 720), (750, 1020)]
    # an IN with no OUT before the next IN is dropped; a stray OUT first is ignored
    assert R.pairs([500, 540, 600, 720], [2, 1, 1, 2]) == [(600, 720)]
    # two OUTs: the later closes the pair
    assert R.pairs([540, 700, 720], [1, 2, 2]) == [(540, 720)]


def test_pairs_keeps_at_most_ten() -> None:
    minutes = list(range(0, 24 * 40, 40))
    got = R.pairs(minutes, [3] * len(minutes))
    assert len(got) == 10 and got[0] == (0, 40) and got[-1] == (720, 760)


@pytest.mark.parametrize(
    ("statuses", "want"),
    [
        (["A", "WO", "A"], [1]),
        (["A", "WO", "WO", "A"], [1, 2]),
        (["A", "PH", "WO", "A"], [1, 2]),
        (["P", "WO", "A"], []),
        (["A", "WO", "P"], []),
        (["WO", "A"], []),
        (["A", "WO"], []),
        (["A", "HD", "WO", "A"], []),
        (["A", "WO", "A", "WO", "A"], [1, 3]),
        (["A", "MP", "A"], []),
    ],
)
def test_awo_targets(statuses: list[str], want: list[int]) -> None:
    assert R.awo_targets(statuses) == want


# --- whole days through the engine ---------------------------------------------------------


def test_present_day_with_in_and_out() -> None:
    row = one(DAY_SHIFT, punch("2026-11-02 08:55", "IN"), punch("2026-11-02 17:05", "OUT"))
    assert row["status"] == "P" and row["work"] == 460 and row["late"] == 0
    assert row["in"] == datetime(2026, 11, 2, 8, 55) and row["out"] == datetime(2026, 11, 2, 17, 5)
    assert row["flags"] == [] and row["pairs"] == [(row["in"], row["out"])]


def test_grace_exactly_reached_and_one_minute_past() -> None:
    exact = one(DAY_SHIFT, punch("2026-11-02 09:10", "IN"), punch("2026-11-02 16:50", "OUT"))
    assert exact["late"] == 0 and exact["early"] == 0 and exact["flags"] == []
    past = one(DAY_SHIFT, punch("2026-11-02 09:11", "IN"), punch("2026-11-02 16:49", "OUT"))
    assert past["late"] == 11 and past["early"] == 11 and past["flags"] == ["late", "early_exit"]


def test_first_in_last_out_and_duplicates_in_one_minute() -> None:
    row = one(
        DAY_SHIFT,
        punch("2026-11-02 09:02:10", "IN"),
        punch("2026-11-02 09:02:50", "IN"),
        punch("2026-11-02 09:30", "IN"),
        punch("2026-11-02 13:00", "OUT"),
        punch("2026-11-02 17:00", "OUT"),
    )
    assert row["punches"] == 4  # the two 09:02 punches count once
    assert row["in"].minute == 2 and row["out"].hour == 17 and row["status"] == "P"


def test_both_punches_first_is_in_last_is_out() -> None:
    row = one(
        DAY_SHIFT,
        punch("2026-11-02 12:00"),
        punch("2026-11-02 09:00"),
        punch("2026-11-02 13:00"),
        punch("2026-11-02 17:00"),
    )
    assert (row["in"].hour, row["out"].hour, row["status"]) == (9, 17, "P")
    assert row["pair_minutes"] == 180 + 240


def test_one_punch_is_a_missing_punch_counted_neither_way() -> None:
    row = one(DAY_SHIFT, punch("2026-11-02 09:30"))
    assert row["status"] == "MP" and row["flags"] == ["missing_punch"]
    assert row["work"] == 0 and row["late"] == 0 and row["pairs"] == []
    only_ins = one(DAY_SHIFT, punch("2026-11-02 09:00", "IN"), punch("2026-11-02 17:00", "IN"))
    assert only_ins["status"] == "MP"


def test_no_punch_is_absent_and_short_days() -> None:
    assert one(DAY_SHIFT)["status"] == "A"
    short = one(DAY_SHIFT, punch("2026-11-02 09:00", "IN"), punch("2026-11-02 11:59", "OUT"))
    assert short["status"] == "A" and short["work"] == 179
    half = one(DAY_SHIFT, punch("2026-11-02 09:00", "IN"), punch("2026-11-02 13:00", "OUT"))
    assert half["status"] == "HD" and half["work"] == 210
    full = one(DAY_SHIFT, punch("2026-11-02 09:00", "IN"), punch("2026-11-02 15:30", "OUT"))
    assert full["status"] == "P" and full["work"] == 360


def test_night_shift_monday_night_and_tuesday_morning_are_mondays() -> None:
    days = run(
        NIGHT_SHIFT,
        [punch("2026-11-02 21:55", "IN"), punch("2026-11-03 06:20", "OUT")],
        MON,
        TUE,
    )
    assert days[MON]["status"] == "P" and days[MON]["work"] == 475
    assert days[MON]["out"] == datetime(2026, 11, 3, 6, 20)
    assert days[TUE]["status"] == "A"


def test_punch_outside_every_window_is_ignored() -> None:
    row = one(DAY_SHIFT, punch("2026-11-02 04:30", "IN"), punch("2026-11-02 17:00", "OUT"))
    assert row["status"] == "MP" and row["in"] is None


def test_overtime_after_end_and_before_start() -> None:
    row = one(DAY_SHIFT, punch("2026-11-02 09:00", "IN"), punch("2026-11-02 17:31", "OUT"))
    assert row["overtime"] == 31 and "overtime" in row["flags"]
    early_bird = R.ShiftRule(start=540, end=1020, overtime_before=30)
    row = one(early_bird, punch("2026-11-02 08:00", "IN"), punch("2026-11-02 17:00", "OUT"))
    assert row["overtime"] == 60


def test_holiday_worked_is_all_overtime_and_stays_ph() -> None:
    row = one(
        DAY_SHIFT,
        punch("2026-11-02 10:00", "IN"),
        punch("2026-11-02 14:00", "OUT"),
        holidays={MON},
    )
    assert row["status"] == "PH" and row["overtime"] == 210 and row["late"] == 0
    assert row["flags"] == ["overtime", "worked_holiday"]
    assert one(DAY_SHIFT, holidays={MON})["status"] == "PH"


def test_week_off_and_week_off_worked() -> None:
    assert one(DAY_SHIFT, day=SAT)["status"] == "WO"
    row = one(DAY_SHIFT, punch("2026-11-07 09:00"), punch("2026-11-07 12:00"), day=SAT)
    assert row["status"] == "WO" and row["overtime"] == 150
    assert row["flags"] == ["overtime", "worked_week_off"]


def test_festival_is_a_working_day_flagged() -> None:
    row = one(DAY_SHIFT, festivals={MON})
    assert row["status"] == "A" and row["flags"] == ["festival"]


def test_joined_mid_month_and_left_produce_no_rows_outside() -> None:
    days = run(
        DAY_SHIFT,
        [punch("2026-11-02 09:00"), punch("2026-11-02 17:00")],
        date(2026, 11, 1),
        date(2026, 11, 30),
        joined=date(2026, 11, 10),
        left=date(2026, 11, 20),
    )
    assert min(days) == date(2026, 11, 10) and max(days) == date(2026, 11, 20)
    assert len(days) == 11


def test_manual_punch_is_flagged() -> None:
    row = one(DAY_SHIFT, punch("2026-11-02 09:00", "IN", True), punch("2026-11-02 17:00", "OUT"))
    assert row["status"] == "P" and row["flags"] == ["manual"]
