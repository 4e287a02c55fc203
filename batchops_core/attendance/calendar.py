"""Shifts and holidays: the admin-managed calendar that attendance rules read.

Admins only (`MANAGE_ATTENDANCE`); every change writes an audit row and emits
`attendance.updated`. A change does not recompute past days by itself: recompute is explicit
(`attendance process`), so an edit made by mistake does not silently rewrite a closed month.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy import func, select

from batchops_core import audit
from batchops_core.attendance.models import Employee, Holiday, Shift
from batchops_core.attendance.views import (
    HolidayInfo,
    ShiftInfo,
    hours_to_minutes,
    parse_date,
    parse_holiday_type,
    parse_time,
    parse_week_off,
    updated,
)
from batchops_core.errors import NotFound, ValidationFailed
from batchops_core.infra.db import UnitOfWork
from batchops_core.permissions import Action, Actor, require

SHIFT_FIELDS = frozenset(
    {
        "name",
        "start",
        "end",
        "grace_in",
        "grace_out",
        "half_day_hours",
        "full_day_hours",
        "overtime_after",
        "overtime_before",
        "lunch_minutes",
        "week_off",
    }
)


def _minutes(value: Any, what: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationFailed(
            f"{what} must be a whole number of minutes, not '{value}'."
        ) from None
    if not 0 <= number <= 720:
        raise ValidationFailed(f"{what} must be between 0 and 720 minutes, not {number}.")
    return number


def _name(text: Any) -> str:
    clean = " ".join(str(text or "").split())[:64]
    if not clean:
        raise ValidationFailed("the shift name is empty; give it a short name.")
    return clean


def _apply(row: Shift, changes: dict[str, Any]) -> None:
    unknown = sorted(set(changes) - SHIFT_FIELDS)
    if unknown:
        raise ValidationFailed(f"cannot change {', '.join(unknown)} of a shift.")
    if "name" in changes:
        row.name = _name(changes["name"])
    if "start" in changes:
        row.start_minute = parse_time(changes["start"], "start time")
    if "end" in changes:
        row.end_minute = parse_time(changes["end"], "end time")
    for key in ("grace_in", "grace_out", "overtime_after", "overtime_before", "lunch_minutes"):
        if key in changes:
            setattr(row, key, _minutes(changes[key], key.replace("_", "-")))
    for key in ("half_day_hours", "full_day_hours"):
        if key in changes:
            minutes = hours_to_minutes(changes[key], key.replace("_", "-"))
            setattr(row, key.replace("hours", "minutes"), minutes)
    if "week_off" in changes:
        row.week_off = parse_week_off(changes["week_off"])
    if row.start_minute == row.end_minute:
        raise ValidationFailed("a shift cannot end when it starts; give a different end time.")
    if row.half_day_minutes > row.full_day_minutes:
        raise ValidationFailed("half-day-hours cannot exceed full-day-hours.")


async def _shift(uow: UnitOfWork, ref: str | int) -> Shift:
    text = str(ref).strip()
    row = await uow.get(Shift, int(text)) if text.isdigit() else None
    if row is None:
        row = await uow.scalar(select(Shift).where(func.lower(Shift.name) == text.lower()))
    if row is None:
        raise NotFound(f"there is no shift named '{ref}'.")
    return row


async def _clash(uow: UnitOfWork, name: str, own: int | None) -> None:
    other = await uow.scalar(
        select(Shift.id).where(func.lower(Shift.name) == name.lower(), Shift.id != (own or -1))
    )
    if other is not None:
        raise ValidationFailed(f"a shift named '{name}' already exists.")


async def add_shift(
    uow: UnitOfWork,
    *,
    actor: Actor,
    name: str,
    start: str,
    end: str,
    **options: Any,
) -> ShiftInfo:
    """A new shift; options: grace_in, grace_out, half_day_hours, full_day_hours,
    overtime_after, overtime_before, lunch_minutes, week_off ('sat,sun')."""
    require(actor, Action.MANAGE_ATTENDANCE)
    row = Shift(
        grace_in=10,
        grace_out=10,
        half_day_minutes=180,
        full_day_minutes=360,
        overtime_after=30,
        overtime_before=0,
        lunch_minutes=30,
        week_off="sat,sun",
    )
    _apply(row, {"name": name, "start": start, "end": end, **options})
    await _clash(uow, row.name, None)
    uow.add(row)
    await uow.flush()
    info = ShiftInfo.of(row)
    audit.record(
        uow,
        actor=actor,
        action="shift.create",
        target_type="shift",
        target_id=row.id,
        target_name=row.name,
        detail=f"{info.start}-{info.end} off {info.week_off or 'none'}",
    )
    uow.emit(updated("shift", row.id, "shift.created"))
    return info


async def edit_shift(
    uow: UnitOfWork, *, actor: Actor, shift: str | int, **changes: Any
) -> ShiftInfo:
    require(actor, Action.MANAGE_ATTENDANCE)
    row = await _shift(uow, shift)
    before = ShiftInfo.of(row)
    _apply(row, changes)
    await _clash(uow, row.name, row.id)
    await uow.flush()
    after = ShiftInfo.of(row)
    diff = [
        f"{k}: {getattr(before, k)!r} -> {getattr(after, k)!r}"
        for k in before.__dataclass_fields__
        if getattr(before, k) != getattr(after, k)
    ]
    audit.record(
        uow,
        actor=actor,
        action="shift.update",
        target_type="shift",
        target_id=row.id,
        target_name=row.name,
        detail="; ".join(diff) or "no change",
    )
    uow.emit(updated("shift", row.id, "shift.updated"))
    return after


async def remove_shift(uow: UnitOfWork, *, actor: Actor, shift: str | int) -> ShiftInfo:
    require(actor, Action.MANAGE_ATTENDANCE)
    row = await _shift(uow, shift)
    users = await uow.scalar(select(func.count(Employee.id)).where(Employee.shift_id == row.id))
    if users:
        raise ValidationFailed(
            f"shift '{row.name}' is the shift of {users} employee(s); move them to another first."
        )
    info = ShiftInfo.of(row)
    await uow.delete(row)
    audit.record(
        uow,
        actor=actor,
        action="shift.delete",
        target_type="shift",
        target_id=info.id,
        target_name=info.name,
    )
    uow.emit(updated("shift", info.id, "shift.deleted"))
    return info


async def list_shifts(uow: UnitOfWork, *, actor: Actor) -> list[ShiftInfo]:
    require(actor, Action.VIEW_ATTENDANCE)
    rows = await uow.scalars(select(Shift).order_by(Shift.name))
    return [ShiftInfo.of(r) for r in rows]


async def add_holiday(
    uow: UnitOfWork, *, actor: Actor, day: str | date, name: str, type: str = "public"
) -> HolidayInfo:
    require(actor, Action.MANAGE_ATTENDANCE)
    when = parse_date(day, "holiday date")
    clean = " ".join(str(name or "").split())[:100]
    if not clean:
        raise ValidationFailed("the holiday has no name.")
    kind = parse_holiday_type(type)
    if await uow.scalar(select(Holiday.id).where(Holiday.day == when)) is not None:
        raise ValidationFailed(f"{when} is already a holiday; remove it first to change it.")
    row = Holiday(day=when, name=clean, type=kind)
    uow.add(row)
    await uow.flush()
    audit.record(
        uow,
        actor=actor,
        action="holiday.create",
        target_type="holiday",
        target_id=row.id,
        target_name=f"{when} {clean}",
        detail=kind.value,
    )
    uow.emit(updated("holiday", row.id, "holiday.created"))
    return HolidayInfo.of(row)


async def remove_holiday(uow: UnitOfWork, *, actor: Actor, day: str | date) -> HolidayInfo:
    require(actor, Action.MANAGE_ATTENDANCE)
    when = parse_date(day, "holiday date")
    row = await uow.scalar(select(Holiday).where(Holiday.day == when))
    if row is None:
        raise NotFound(f"{when} is not a holiday.")
    info = HolidayInfo.of(row)
    await uow.delete(row)
    audit.record(
        uow,
        actor=actor,
        action="holiday.delete",
        target_type="holiday",
        target_id=info.id,
        target_name=f"{when} {info.name}",
    )
    uow.emit(updated("holiday", info.id, "holiday.deleted"))
    return info


async def list_holidays(
    uow: UnitOfWork, *, actor: Actor, year: int | None = None
) -> list[HolidayInfo]:
    require(actor, Action.VIEW_ATTENDANCE)
    query = select(Holiday).order_by(Holiday.day)
    if year is not None:
        query = query.where(Holiday.day >= date(year, 1, 1), Holiday.day <= date(year, 12, 31))
    return [HolidayInfo.of(r) for r in await uow.scalars(query)]


async def import_holidays(
    uow: UnitOfWork, *, actor: Actor, rows: list[dict[str, str]]
) -> tuple[list[HolidayInfo], list[str]]:
    """Rows with date, name and optionally type; known dates are renamed, bad rows reported."""
    require(actor, Action.MANAGE_ATTENDANCE)
    done: list[HolidayInfo] = []
    problems: list[str] = []
    for number, raw in enumerate(rows, start=2):
        try:
            when = parse_date(raw.get("date", ""), "holiday date")
            kind = parse_holiday_type(raw.get("type") or "public")
            name = " ".join(str(raw.get("name") or "").split())[:100]
            if not name:
                raise ValidationFailed("the holiday has no name.")
        except ValidationFailed as exc:
            problems.append(f"row {number}: {exc}")
            continue
        row = await uow.scalar(select(Holiday).where(Holiday.day == when))
        if row is None:
            row = Holiday(day=when, name=name, type=kind)
            uow.add(row)
        else:
            row.name, row.type = name, kind
        await uow.flush()
        done.append(replace(HolidayInfo.of(row)))
    audit.record(
        uow,
        actor=actor,
        action="holiday.import",
        target_type="holiday",
        detail=f"{len(done)} holidays, {len(problems)} rows refused",
    )
    uow.emit(updated("holiday", None, "holiday.imported", count=len(done)))
    return done, problems
