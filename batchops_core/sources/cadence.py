"""Which days a source is expected to deliver: a cron line, or "school days" from the calendar.

A day is expected under a cron line when the line fires at least once on that calendar day
(minute resolution, in the deployment's timezone). "school days" are Monday to Friday inside a
term and outside every holiday; with no term entered at all, every weekday outside holidays
counts, so a fresh install expects weekdays rather than nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from batchops_core.errors import ValidationFailed
from batchops_core.sources.models import CalendarKind

SCHOOL_DAYS = "school days"
MAX_SPAN_DAYS = 3660


@dataclass(frozen=True)
class CalendarSpan:
    kind: CalendarKind
    name: str
    starts_on: date
    ends_on: date

    def covers(self, day: date) -> bool:
        return self.starts_on <= day <= self.ends_on


def today(tz: str) -> date:
    """Today's date where the school is (the deployment's timezone), not the host's."""
    from batchops_core.infra.clock import utcnow

    return utcnow().astimezone(ZoneInfo(tz)).date()


def check_cron(line: str) -> None:
    if not croniter.is_valid(line.strip()) or len(line.split()) != 5:
        raise ValidationFailed(
            f"config.cadence {line!r} is neither 'school days' nor a 5-field cron line "
            "(e.g. '0 7 * * 1-5')."
        )


def days_between(start: date, end: date) -> list[date]:
    if end < start:
        return []
    if (end - start).days > MAX_SPAN_DAYS:
        raise ValidationFailed("the date range is longer than ten years; narrow --from/--to.")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def is_school_day(day: date, calendar: Iterable[CalendarSpan]) -> bool:
    spans = list(calendar)
    if day.weekday() >= 5:
        return False
    if any(s.kind is CalendarKind.HOLIDAY and s.covers(day) for s in spans):
        return False
    terms = [s for s in spans if s.kind is CalendarKind.TERM]
    return not terms or any(t.covers(day) for t in terms)


def cron_fires_on(line: str, day: date, tz: str) -> bool:
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(0, 0), zone) - timedelta(seconds=1)
    fire = croniter(line, start).get_next(datetime)
    return bool(fire.astimezone(zone).date() == day)


def expected_days(
    cadence: str, start: date, end: date, calendar: Iterable[CalendarSpan], tz: str = "UTC"
) -> list[date]:
    """The expected days from `start` to `end` inclusive, oldest first."""
    spans = list(calendar)
    days = days_between(start, end)
    if cadence.strip().lower() == SCHOOL_DAYS:
        return [d for d in days if is_school_day(d, spans)]
    check_cron(cadence)
    return [d for d in days if cron_fires_on(cadence.strip(), d, tz)]
