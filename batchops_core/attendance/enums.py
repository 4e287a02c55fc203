"""Attendance statuses and kinds, stored by value like every BatchOps enum."""

from __future__ import annotations

from enum import IntFlag, StrEnum


class DayStatus(StrEnum):
    PRESENT = "P"
    ABSENT = "A"
    HALF_DAY = "HD"
    WEEK_OFF = "WO"
    HOLIDAY = "PH"
    MISSING_PUNCH = "MP"


STATUS_ORDER: tuple[DayStatus, ...] = (
    DayStatus.PRESENT,
    DayStatus.ABSENT,
    DayStatus.HALF_DAY,
    DayStatus.WEEK_OFF,
    DayStatus.HOLIDAY,
    DayStatus.MISSING_PUNCH,
)
"""Status codes used by the vectorized rules: `STATUS_ORDER[code]`."""


class Direction(StrEnum):
    """IN and OUT say what the device was told; BOTH means the device does not know."""

    IN = "IN"
    OUT = "OUT"
    BOTH = "BOTH"


DIRECTION_BITS = {Direction.IN: 1, Direction.OUT: 2, Direction.BOTH: 3}
"""A punch may open a day (bit 1) and/or close it (bit 2); two punches in one minute OR theirs."""


class Approval(StrEnum):
    APPROVED = "approved"
    PENDING = "pending"
    REJECTED = "rejected"


class HolidayType(StrEnum):
    PUBLIC = "public"
    FESTIVAL = "festival"
    """An optional (restricted) holiday: the day stays a working day, flagged."""
    SCHOOL = "school"


class CorrectionKind(StrEnum):
    AWO = "awo"


class Flag(IntFlag):
    """Remarks on a day, kept as a bit mask by the vectorized rules and as names in the rows."""

    LATE = 1
    EARLY_EXIT = 2
    OVERTIME = 4
    MISSING_PUNCH = 8
    WORKED_HOLIDAY = 16
    WORKED_WEEK_OFF = 32
    MANUAL = 64
    FESTIVAL = 128
    AWO = 256


def flag_names(mask: int) -> list[str]:
    """`5` → `["late", "overtime"]`, in a fixed order."""
    return [str(f.name).lower() for f in Flag if mask & f.value]
