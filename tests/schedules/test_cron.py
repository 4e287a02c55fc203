"""Cron validation, next firing times across DST changes, deterministic firing ids (no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from batchops_core.cron import firing_job_id, next_runs, validate_cron
from batchops_core.errors import ValidationFailed
from batchops_core.services.schedules import preview_next_runs


@pytest.mark.parametrize(
    ("cron", "tz", "expected"),
    [
        ("", "UTC", "empty"),
        ("every day", "UTC", "has 2 field(s)"),
        ("0 6 * * 1-5 *", "UTC", "has 6 field(s)"),
        ("* * * * * *", "UTC", "needs exactly 5"),
        ("@daily", "UTC", "has 1 field(s)"),
        ("61 * * * *", "UTC", "minute field '61'"),
        ("0 24 * * *", "UTC", "hour field '24'"),
        ("0 0 0 * *", "UTC", "day-of-month field '0'"),
        ("0 0 * 13 *", "UTC", "month field '13'"),
        ("0 0 * * 8", "UTC", "day-of-week field '8'"),
        ("*/0 * * * *", "UTC", "minute field '*/0'"),
        ("0 0 31 2 *", "UTC", "never fires"),
        ("0 6 * * *", "Mars/Olympus", "'Mars/Olympus' is not a known timezone"),
        ("0 6 * * *", "", "timezone is empty"),
    ],
)
def test_validate_cron_names_the_problem(cron: str, tz: str, expected: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        validate_cron(cron, tz)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("cron", "tz"),
    [
        ("0 6 * * 1-5", "UTC"),
        ("*/15 8-17 * * MON-FRI", "Europe/Paris"),
        ("30 2 1 JAN,JUL *", "Asia/Kolkata"),
        ("0 0 29 2 *", "America/New_York"),
    ],
)
def test_validate_cron_accepts_classic_lines(cron: str, tz: str) -> None:
    validate_cron(cron, tz)


def _iso(values: list[datetime]) -> list[str]:
    return [v.astimezone(UTC).strftime("%Y-%m-%d %H:%M") for v in values]


def test_next_five_across_spring_forward_fire_once_after_the_gap() -> None:
    # US DST starts 2026-03-08 at 02:00 EST -> 03:00 EDT; 02:30 does not exist that day.
    runs = next_runs("30 2 * * *", "America/New_York", datetime(2026, 3, 6, tzinfo=UTC))
    assert _iso(runs) == [
        "2026-03-06 07:30",  # 02:30 EST
        "2026-03-07 07:30",
        "2026-03-08 07:30",  # the skipped 02:30 runs at 03:30 EDT, once
        "2026-03-09 06:30",  # 02:30 EDT
        "2026-03-10 06:30",
    ]
    assert all(r.tzinfo is not None and r.utcoffset().total_seconds() == 0 for r in runs)


def test_next_five_across_fall_back_fire_once_in_the_repeated_hour() -> None:
    # US DST ends 2026-11-01 at 02:00 EDT -> 01:00 EST; 01:30 happens twice that night.
    runs = next_runs("30 1 * * *", "America/New_York", datetime(2026, 10, 30, tzinfo=UTC))
    assert _iso(runs) == [
        "2026-10-30 05:30",
        "2026-10-31 05:30",
        "2026-11-01 05:30",  # first 01:30 (EDT) only
        "2026-11-02 06:30",  # 01:30 EST
        "2026-11-03 06:30",
    ]


def test_next_runs_in_europe_keeps_local_wall_time() -> None:
    # EU DST starts 2026-03-29: 09:00 Paris is 08:00 UTC before, 07:00 UTC after.
    runs = next_runs("0 9 * * *", "Europe/Paris", datetime(2026, 3, 27, 12, tzinfo=UTC))
    assert _iso(runs) == [
        "2026-03-28 08:00",
        "2026-03-29 07:00",
        "2026-03-30 07:00",
        "2026-03-31 07:00",
        "2026-04-01 07:00",
    ]


def test_next_runs_are_strictly_after_the_given_instant() -> None:
    start = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)
    assert next_runs("0 6 * * *", "UTC", start, n=1) == [datetime(2026, 1, 2, 6, 0, tzinfo=UTC)]
    with pytest.raises(ValueError):
        next_runs("0 6 * * *", "UTC", datetime(2026, 1, 1), n=1)


def test_preview_validates_and_returns_future_times() -> None:
    runs = preview_next_runs("*/5 * * * *", "UTC", n=3)
    assert len(runs) == 3 and runs == sorted(runs)
    assert all(r > datetime.now(UTC) for r in runs)
    with pytest.raises(ValidationFailed, match="hour field"):
        preview_next_runs("0 25 * * *", "UTC")


def test_firing_job_id_is_deterministic_and_distinct() -> None:
    utc = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
    paris = utc.astimezone(ZoneInfo("Europe/Paris"))
    expected = "batchops:schedule:12:20260301T070000Z"
    assert firing_job_id(12, utc) == firing_job_id(12, paris) == expected
    assert firing_job_id(12, utc) != firing_job_id(13, utc)
    assert firing_job_id(12, utc) != firing_job_id(12, utc.replace(minute=1))
    assert firing_job_id(12, utc, prefix="campus2").startswith("campus2:schedule:12:")
    with pytest.raises(ValueError):
        firing_job_id(12, datetime(2026, 3, 1))
