"""What attendance services return (frozen dataclasses, never live rows) and value parsing.

Parsing lives here so that the CLI, the TUI forms and file imports read a time, a date, a list
of week-off days or a direction the same way and refuse bad input with the same sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from batchops_core.attendance.enums import Approval, Direction, HolidayType
from batchops_core.attendance.models import Employee, Holiday, Punch, Shift
from batchops_core.attendance.rules import ShiftRule
from batchops_core.errors import ValidationFailed
from batchops_core.infra.events import Event

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^\s*(\d{1,2})[:.h](\d{2})\s*$")


def updated(kind: str, ident: int | str | None, status: str, **data: Any) -> Event:
    """The one event type of the domain: `attendance.updated` (what changed is in status)."""
    return Event(type="attendance.updated", id=ident, status=status, data=data)


def parse_time(text: str, what: str = "time") -> int:
    """'09:00' → 540 (minutes of the day)."""
    match = _TIME.match(str(text or ""))
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValidationFailed(f"the {what} '{text}' is not a time like 09:00.")
    return int(match[1]) * 60 + int(match[2])


def format_minute(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_date(text: str | date, what: str = "date") -> date:
    if isinstance(text, date):
        return text
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError:
        raise ValidationFailed(f"the {what} '{text}' is not a date like 2026-11-02.") from None


def parse_datetime(text: str | datetime, what: str = "time") -> datetime:
    """A local wall-clock time; a timezone, if given, is dropped (devices log wall time)."""
    if isinstance(text, datetime):
        return text.replace(tzinfo=None, second=0, microsecond=0)
    try:
        value = datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise ValidationFailed(f"the {what} '{text}' is not like 2026-11-02 09:04.") from None
    return value.replace(tzinfo=None, second=0, microsecond=0)


def parse_week_off(text: str) -> str:
    """'sat,sun' (or 'none') → the canonical comma list, Monday first."""
    items = [p.strip().lower()[:3] for p in str(text or "").split(",") if p.strip()]
    if items in ([], ["non"]):
        return ""
    unknown = [i for i in items if i not in WEEKDAYS]
    if unknown:
        raise ValidationFailed(
            f"week-off day '{unknown[0]}' is not one of {', '.join(WEEKDAYS)} (or 'none')."
        )
    return ",".join(d for d in WEEKDAYS if d in items)


def parse_direction(text: str | Direction | None) -> Direction:
    raw = str(text or "BOTH").strip().upper()
    aliases = {"I": "IN", "O": "OUT", "B": "BOTH", "": "BOTH", "INOUT": "BOTH", "IN/OUT": "BOTH"}
    try:
        return Direction(aliases.get(raw, raw))
    except ValueError:
        raise ValidationFailed(f"direction '{text}' is not IN, OUT or BOTH.") from None


def parse_holiday_type(text: str | None) -> HolidayType:
    try:
        return HolidayType(str(text or "public").strip().lower())
    except ValueError:
        raise ValidationFailed(
            f"holiday type '{text}' is not public, festival or school."
        ) from None


def hours_to_minutes(hours: float, what: str) -> int:
    if not 0 <= float(hours) <= 24:
        raise ValidationFailed(f"{what} must be between 0 and 24 hours, not {hours}.")
    return round(float(hours) * 60)


@dataclass(frozen=True)
class ShiftInfo:
    id: int
    name: str
    start: str
    end: str
    grace_in: int
    grace_out: int
    half_day_hours: float
    full_day_hours: float
    overtime_after: int
    overtime_before: int
    lunch_minutes: int
    week_off: str

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    @classmethod
    def of(cls, row: Shift) -> ShiftInfo:
        return cls(
            id=row.id,
            name=row.name,
            start=format_minute(row.start_minute),
            end=format_minute(row.end_minute),
            grace_in=row.grace_in,
            grace_out=row.grace_out,
            half_day_hours=row.half_day_minutes / 60,
            full_day_hours=row.full_day_minutes / 60,
            overtime_after=row.overtime_after,
            overtime_before=row.overtime_before,
            lunch_minutes=row.lunch_minutes,
            week_off=row.week_off,
        )


def shift_rule(row: Shift) -> ShiftRule:
    return ShiftRule(
        start=row.start_minute,
        end=row.end_minute,
        grace_in=row.grace_in,
        grace_out=row.grace_out,
        half_day_minutes=row.half_day_minutes,
        full_day_minutes=row.full_day_minutes,
        overtime_after=row.overtime_after,
        overtime_before=row.overtime_before,
        lunch_minutes=row.lunch_minutes,
        week_off=frozenset(WEEKDAYS.index(d) for d in row.week_off.split(",") if d),
    )


@dataclass(frozen=True)
class HolidayInfo:
    id: int
    day: date
    name: str
    type: HolidayType

    @classmethod
    def of(cls, row: Holiday) -> HolidayInfo:
        return cls(id=row.id, day=row.day, name=row.name, type=row.type)


@dataclass(frozen=True)
class EmployeeInfo:
    id: int
    code: str
    name: str
    shift: str
    department: str
    joined: date | None
    left: date | None

    @classmethod
    def of(cls, row: Employee, shift: str) -> EmployeeInfo:
        return cls(
            id=row.id,
            code=row.code,
            name=row.name,
            shift=shift,
            department=row.department,
            joined=row.joined,
            left=row.left,
        )


@dataclass(frozen=True)
class PunchInfo:
    id: int
    employee: str
    employee_name: str
    at: datetime
    direction: Direction
    device: str
    source: str
    manual: bool
    approval: Approval
    reason: str
    requested_by: str
    decided_by: str

    @classmethod
    def of(cls, row: Punch, code: str, name: str) -> PunchInfo:
        return cls(
            id=row.id,
            employee=code,
            employee_name=name,
            at=row.punched_at,
            direction=row.direction,
            device=row.device,
            source=row.source,
            manual=row.manual,
            approval=row.approval,
            reason=row.reason,
            requested_by=row.requested_by,
            decided_by=row.decided_by,
        )


@dataclass(frozen=True)
class PunchIn:
    """One punch handed in by a device sync, a file or a source (`add_punches`)."""

    employee_code: str
    at: datetime
    """Local wall-clock time of the device."""
    direction: Direction | str = Direction.BOTH
    device: str = ""


@dataclass(frozen=True)
class PunchImport:
    """What an import did: new punches, already-known ones, and what could not be taken."""

    added: int
    duplicates: int
    unknown_codes: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    recomputed_days: int = 0


@dataclass(frozen=True)
class ImportResult:
    added: int
    updated: int
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProcessResult:
    date_from: date
    date_to: date
    employees: int
    days: int
    inserted: int
    updated: int
    deleted: int

    @property
    def changed(self) -> int:
        return self.inserted + self.updated + self.deleted


@dataclass(frozen=True)
class DayInfo:
    employee: str
    name: str
    department: str
    date: date
    status: str
    computed_status: str
    rule: str
    in_time: datetime | None
    out_time: datetime | None
    work_minutes: int
    late_minutes: int
    early_exit_minutes: int
    overtime_minutes: int
    punch_count: int
    flags: tuple[str, ...]
    pairs: tuple[tuple[str, str, int], ...] = field(default_factory=tuple)
    pair_minutes: int = 0

    def as_json(self) -> dict[str, Any]:
        """The contract of `attendance show --json` (plus the man-day pairs)."""
        return {
            "employee": self.employee,
            "date": self.date.isoformat(),
            "status": self.status,
            "in_time": self.in_time.isoformat(timespec="minutes") if self.in_time else None,
            "out_time": self.out_time.isoformat(timespec="minutes") if self.out_time else None,
            "work_minutes": self.work_minutes,
            "late_minutes": self.late_minutes,
            "early_exit_minutes": self.early_exit_minutes,
            "overtime_minutes": self.overtime_minutes,
            "flags": list(self.flags),
            "name": self.name,
            "department": self.department,
            "pairs": [list(p) for p in self.pairs],
            "pair_minutes": self.pair_minutes,
        }
