"""Attendance tables: shifts, holidays, employees, punches, days, correction runs.

Punch and day times are the school's **local wall clock** (naive `DateTime`): devices log wall
time, a shift starts at 09:00 whatever the season, and a day belongs to the local date its shift
starts; converting through UTC would move night shifts across dates twice a year. Audit and
bookkeeping timestamps stay UTC like the rest of BatchOps.

A day keeps `computed_status` (what the rules say) apart from `status` (what the register
shows): an A–WO–A correction overrides the status while its premise (`before`) still holds, so a
recompute never erases a correction and a revert restores exactly the computed value.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from batchops_core.attendance.enums import (
    Approval,
    CorrectionKind,
    DayStatus,
    Direction,
    HolidayType,
)
from batchops_core.infra.clock import utcnow
from batchops_core.infra.db_types import str_enum
from batchops_core.models import Base, Timestamped

LocalDateTime = DateTime(timezone=False)


class Shift(Timestamped, Base):
    __tablename__ = "attendance_shifts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)
    grace_in: Mapped[int] = mapped_column(Integer, default=10)
    grace_out: Mapped[int] = mapped_column(Integer, default=10)
    half_day_minutes: Mapped[int] = mapped_column(Integer, default=180)
    full_day_minutes: Mapped[int] = mapped_column(Integer, default=360)
    overtime_after: Mapped[int] = mapped_column(Integer, default=30)
    overtime_before: Mapped[int] = mapped_column(Integer, default=0)
    lunch_minutes: Mapped[int] = mapped_column(Integer, default=30)
    week_off: Mapped[str] = mapped_column(String(32), default="sat,sun")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Holiday(Timestamped, Base):
    __tablename__ = "attendance_holidays"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, unique=True)
    name: Mapped[str] = mapped_column(String(100))
    type: Mapped[HolidayType] = mapped_column(str_enum(HolidayType), default=HolidayType.PUBLIC)


class Employee(Timestamped, Base):
    __tablename__ = "attendance_employees"
    __table_args__ = (Index("ix_attendance_employees_department", "department", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    shift_id: Mapped[int] = mapped_column(
        ForeignKey("attendance_shifts.id", ondelete="RESTRICT"), index=True
    )
    department: Mapped[str] = mapped_column(String(100), default="")
    joined: Mapped[date | None] = mapped_column(Date)
    left: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Punch(Timestamped, Base):
    """One device, file or manual punch; unique per employee, timestamp and device."""

    __tablename__ = "attendance_punches"
    __table_args__ = (
        UniqueConstraint("employee_id", "punched_at", "device", name="uq_attendance_punch"),
        Index("ix_attendance_punches_employee_at", "employee_id", "punched_at"),
        Index("ix_attendance_punches_at", "punched_at"),
        Index("ix_attendance_punches_approval", "approval", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(
        ForeignKey("attendance_employees.id", ondelete="CASCADE")
    )
    punched_at: Mapped[datetime] = mapped_column(LocalDateTime)
    direction: Mapped[Direction] = mapped_column(str_enum(Direction, 8), default=Direction.BOTH)
    device: Mapped[str] = mapped_column(String(64), default="")
    source: Mapped[str] = mapped_column(String(100), default="")
    manual: Mapped[bool] = mapped_column(default=False)
    approval: Mapped[Approval] = mapped_column(str_enum(Approval), default=Approval.APPROVED)
    reason: Mapped[str] = mapped_column(Text, default="")
    requested_by: Mapped[str] = mapped_column(String(64), default="")
    decided_by: Mapped[str] = mapped_column(String(64), default="")
    decided_at: Mapped[datetime | None]


class AttendanceDay(Base):
    __tablename__ = "attendance_days"
    __table_args__ = (
        UniqueConstraint("employee_id", "day", name="uq_attendance_day"),
        Index("ix_attendance_days_day_status", "day", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(
        ForeignKey("attendance_employees.id", ondelete="CASCADE")
    )
    day: Mapped[date] = mapped_column(Date)
    status: Mapped[DayStatus] = mapped_column(str_enum(DayStatus, 4))
    computed_status: Mapped[DayStatus] = mapped_column(str_enum(DayStatus, 4))
    rule: Mapped[int] = mapped_column(Integer, default=0)
    in_time: Mapped[datetime | None] = mapped_column(LocalDateTime)
    out_time: Mapped[datetime | None] = mapped_column(LocalDateTime)
    work_minutes: Mapped[int] = mapped_column(Integer, default=0)
    late_minutes: Mapped[int] = mapped_column(Integer, default=0)
    early_exit_minutes: Mapped[int] = mapped_column(Integer, default=0)
    overtime_minutes: Mapped[int] = mapped_column(Integer, default=0)
    punch_count: Mapped[int] = mapped_column(Integer, default=0)
    flags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    pairs: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """[["HH:MM", "HH:MM", minutes], …] up to 10 (times may pass midnight: "25:10")."""
    pair_minutes: Mapped[int] = mapped_column(Integer, default=0)
    digest: Mapped[int] = mapped_column(BigInteger, default=0)
    """A digest of the stored values: a recompute rewrites only rows whose digest changed."""
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class CorrectionRun(Timestamped, Base):
    __tablename__ = "attendance_correction_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[CorrectionKind] = mapped_column(str_enum(CorrectionKind))
    date_from: Mapped[date] = mapped_column(Date)
    date_to: Mapped[date] = mapped_column(Date)
    actor_name: Mapped[str] = mapped_column(String(64), default="")
    changes: Mapped[int] = mapped_column(Integer, default=0)
    reverted_at: Mapped[datetime | None]
    reverted_by: Mapped[str] = mapped_column(String(64), default="")


class Correction(Base):
    """One day changed by a run: the status before and after; inactive once reverted."""

    __tablename__ = "attendance_corrections"
    __table_args__ = (Index("ix_attendance_corrections_day", "employee_id", "day", "active"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("attendance_correction_runs.id", ondelete="CASCADE"), index=True
    )
    employee_id: Mapped[int] = mapped_column(
        ForeignKey("attendance_employees.id", ondelete="CASCADE")
    )
    day: Mapped[date] = mapped_column(Date)
    before: Mapped[DayStatus] = mapped_column(str_enum(DayStatus, 4))
    after: Mapped[DayStatus] = mapped_column(str_enum(DayStatus, 4))
    active: Mapped[bool] = mapped_column(default=True)
