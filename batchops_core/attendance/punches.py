"""Punches in: device syncs and sources (`add_punches`), files, and manual punches with approval.

Every way in is idempotent: a punch is unique per (employee, timestamp, device) and inserts use
ON CONFLICT DO NOTHING (SQLite and PostgreSQL alike), so a repeated sync or re-imported file adds
nothing. Unknown employee codes are counted and reported, never fatal: the rest of the batch
goes in. New countable punches recompute only the days they belong to, where those days were
already processed (a late punch or an approval fixes its day; the nightly run does the rest).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from batchops_core import audit
from batchops_core.attendance import processing as PR
from batchops_core.attendance import rules as R
from batchops_core.attendance.days import recompute_days
from batchops_core.attendance.employees import find_employee
from batchops_core.attendance.enums import Approval
from batchops_core.attendance.files import PUNCH_COLUMNS, pick, read_rows, require_columns
from batchops_core.attendance.models import Employee, Punch, Shift
from batchops_core.attendance.views import (
    PunchImport,
    PunchIn,
    PunchInfo,
    parse_date,
    parse_datetime,
    parse_direction,
    updated,
)
from batchops_core.enums import Role
from batchops_core.errors import NotFound, ValidationFailed
from batchops_core.infra.clock import utcnow
from batchops_core.infra.db import UnitOfWork
from batchops_core.permissions import Action, Actor, require

log = logging.getLogger(__name__)
BATCH = 5000
MANUAL_DEVICE = "manual"


def _insert(uow: UnitOfWork):  # type: ignore[no-untyped-def]
    dialect = postgresql if uow.bind.dialect.name == "postgresql" else sqlite
    return (
        dialect.insert(Punch)
        .on_conflict_do_nothing(index_elements=["employee_id", "punched_at", "device"])
        .returning(Punch.employee_id, Punch.punched_at)
    )


async def _days_of(uow: UnitOfWork, added: list[tuple[int, datetime]]) -> set[tuple[int, date]]:
    """The attendance day each new punch belongs to (`rules.assign_day` with its shift)."""
    ids = sorted({e for e, _ in added})
    found = await uow.execute(
        select(Employee.id, Shift.start_minute, Shift.end_minute)
        .join(Shift, Shift.id == Employee.shift_id)
        .where(Employee.id.in_(ids))
    )
    shifts = {e: (s, n) for e, s, n in found}
    emp = np.array([e for e, _ in added], np.int64)
    minute = np.array([PR.minute_number(t) for _, t in added], np.int64)
    start = np.array([shifts[e][0] for e in emp.tolist()], np.int64)
    end = np.array([shifts[e][1] for e in emp.tolist()], np.int64)
    day, rel = R.assign_day(*np.divmod(minute, R.MINUTES_PER_DAY), start, end)
    day, rel = np.atleast_1d(day), np.atleast_1d(rel)
    return {
        (e, PR.day_of(d))
        for e, d, r in zip(emp.tolist(), day.tolist(), rel.tolist(), strict=True)
        if r == r
    }


CODE_KEYS = ("employee_code", "employee", "code", "emp_no", "employee_id")
TIME_KEYS = ("at", "timestamp", "punched_at", "time")


def _code_of(raw: object) -> str:
    if isinstance(raw, PunchIn):
        return raw.employee_code
    if isinstance(raw, Mapping):
        return str(next((raw[k] for k in CODE_KEYS if raw.get(k) not in (None, "")), "?"))
    return "?"


def as_punch_in(raw: PunchIn | Mapping[str, Any]) -> PunchIn:
    """A PunchIn, or a mapping with employee/code, at/timestamp, direction, device (what a
    source's column mapping produces) turned into one."""
    if isinstance(raw, PunchIn):
        return raw
    if not isinstance(raw, Mapping):
        raise ValidationFailed(f"a punch must be a PunchIn or a mapping, not {type(raw).__name__}")
    code = _code_of(raw)
    at = next((raw[k] for k in TIME_KEYS if raw.get(k) not in (None, "")), None)
    if code == "?" or at is None:
        raise ValidationFailed("a punch needs an employee code and a time")
    return PunchIn(
        employee_code=str(code).strip(),
        at=at,
        direction=str(raw.get("direction") or "BOTH"),
        device=str(raw.get("device") or ""),
    )


def _stamp(value: object) -> datetime:
    """A punch's local wall-clock time to the second (a timezone, if any, is dropped)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None, microsecond=0)
    try:
        return datetime.fromisoformat(str(value).strip()).replace(tzinfo=None, microsecond=0)
    except ValueError:
        raise ValidationFailed(f"the punch time '{value}' is not like 2026-11-02 09:04.") from None


async def ingest_punches(
    uow: UnitOfWork, *, actor: Actor, rows: Iterable[PunchIn | Mapping[str, Any]], source: str
) -> PunchImport:
    """The full report of `add_punches`: added, duplicates, unknown codes, days recomputed."""
    batch: dict[tuple[str, datetime, str], PunchIn] = {}
    problems: list[str] = []
    for raw in rows:
        try:
            item = as_punch_in(raw)
            at = _stamp(item.at)
            parse_direction(item.direction)
        except ValidationFailed as exc:
            problems.append(f"{_code_of(raw)}: {exc}")
            continue
        batch.setdefault((item.employee_code.strip(), at, item.device.strip()[:64]), item)
    codes = sorted({k[0] for k in batch})
    known: dict[str, int] = {}
    for i in range(0, len(codes), 500):
        chunk = codes[i : i + 500]
        found = await uow.execute(
            select(Employee.code, Employee.id).where(Employee.code.in_(chunk))
        )
        known.update(found.all())
    unknown = tuple(c for c in codes if c not in known)
    values = [
        {
            "employee_id": known[code],
            "punched_at": at,
            "device": device,
            "direction": parse_direction(item.direction),
            "source": source[:100],
            "manual": False,
            "approval": Approval.APPROVED,
            "reason": "",
            "requested_by": "",
            "decided_by": "",
            "created_at": utcnow(),
        }
        for (code, at, device), item in batch.items()
        if code in known
    ]
    added: list[tuple[int, datetime]] = []
    for i in range(0, len(values), BATCH):
        result = await uow.execute(_insert(uow), values[i : i + BATCH])
        added += result.all()
    recomputed = await recompute_days(uow, await _days_of(uow, added)) if added else 0
    if unknown:
        log.warning(
            "punches from %s for unknown employee codes: %s", source, ", ".join(unknown[:20])
        )
    audit.record(
        uow,
        actor=actor,
        action="punch.import",
        target_type="punch",
        target_name=source,
        detail=f"{len(added)} added, {len(values) - len(added)} already known, "
        f"{len(unknown)} unknown codes{': ' + ', '.join(unknown[:20]) if unknown else ''}",
    )
    if added:
        uow.emit(updated("punches", None, "punches.added", count=len(added), source=source))
    return PunchImport(
        added=len(added),
        duplicates=len(values) - len(added),
        unknown_codes=unknown,
        problems=tuple(problems),
        recomputed_days=recomputed,
    )


async def add_punches(
    uow: UnitOfWork, *, rows: Iterable[PunchIn | Mapping[str, Any]], source: str
) -> int:
    """Device punches from a sync or a source (the Sources package's `punches` target).

    Idempotent (unique per employee, timestamp, device); unknown employee codes are logged and
    audited, not fatal. Rows are `PunchIn`s or mappings with employee (or code, emp_no), at
    (or timestamp), direction and device keys. Returns how many punches were new. Acts as the
    system actor `source:<name>`; the caller owns the unit of work (`async with db.unit()`).
    """
    actor = Actor(id=None, username=f"source:{source}"[:64], role=Role.ADMIN)
    return (await ingest_punches(uow, actor=actor, rows=rows, source=source)).added


def _punch_in(raw: dict[str, str]) -> PunchIn:
    stamp = raw.get("timestamp") or f"{raw.get('date', '')} {raw.get('time', '')}".strip()
    if not raw.get("code"):
        raise ValidationFailed("no employee code")
    if not stamp:
        raise ValidationFailed("no timestamp")
    at = _stamp(stamp.replace("/", "-"))
    return PunchIn(
        employee_code=raw["code"],
        at=at,
        direction=parse_direction(raw.get("direction")),
        device=raw.get("device", ""),
    )


async def import_punches(uow: UnitOfWork, *, actor: Actor, path: Path) -> PunchImport:
    """CSV/XLSX with employee code, timestamp (or date + time), direction, device."""
    require(actor, Action.CORRECT_ATTENDANCE)
    rows = pick(read_rows(path), PUNCH_COLUMNS)
    require_columns(rows, path, "code")
    if "timestamp" not in rows[0] and not {"date", "time"} <= set(rows[0]):
        raise ValidationFailed(f"{path.name} has no timestamp column (nor date and time).")
    items: list[PunchIn] = []
    problems: list[str] = []
    for raw in rows:
        try:
            items.append(_punch_in(raw))
        except ValidationFailed as exc:
            problems.append(f"row {raw['_row']}: {str(exc).rstrip('.')}.")
    report = await ingest_punches(uow, actor=actor, rows=items, source=f"file:{path.name}")
    return PunchImport(
        added=report.added,
        duplicates=report.duplicates,
        unknown_codes=report.unknown_codes,
        problems=tuple(problems) + report.problems,
        recomputed_days=report.recomputed_days,
    )


async def _info(uow: UnitOfWork, row: Punch) -> PunchInfo:
    emp = await uow.get(Employee, row.employee_id)
    return PunchInfo.of(row, emp.code if emp else "?", emp.name if emp else "?")


async def request_punch(
    uow: UnitOfWork,
    *,
    actor: Actor,
    code: str,
    at: str | datetime,
    direction: str = "BOTH",
    reason: str,
) -> PunchInfo:
    """A manual punch, pending until a moderator approves it (pending ones never count)."""
    require(actor, Action.REQUEST_PUNCH)
    emp = await find_employee(uow, code)
    when = parse_datetime(at, "--at time")
    text = " ".join(str(reason or "").split())
    if not text:
        raise ValidationFailed("a manual punch needs a reason (--reason).")
    clash = await uow.scalar(
        select(Punch.id).where(
            Punch.employee_id == emp.id, Punch.punched_at == when, Punch.device == MANUAL_DEVICE
        )
    )
    if clash is not None:
        raise ValidationFailed(
            f"a manual punch for {emp.code} at {when:%Y-%m-%d %H:%M} exists (#{clash})."
        )
    row = Punch(
        employee_id=emp.id,
        punched_at=when,
        direction=parse_direction(direction),
        device=MANUAL_DEVICE,
        source="manual",
        manual=True,
        approval=Approval.PENDING,
        reason=text[:1000],
        requested_by=actor.username[:64],
        decided_by="",
    )
    uow.add(row)
    await uow.flush()
    audit.record(
        uow,
        actor=actor,
        action="punch.request",
        target_type="punch",
        target_id=row.id,
        target_name=emp.code,
        detail=f"{when:%Y-%m-%d %H:%M} {row.direction}: {text[:200]}",
    )
    uow.emit(updated("punch", row.id, "punch.pending"))
    return await _info(uow, row)


async def decide_punch(uow: UnitOfWork, *, actor: Actor, punch_id: int, approve: bool) -> PunchInfo:
    """Approve (the punch counts and its day is recomputed) or reject a pending manual punch."""
    require(actor, Action.APPROVE_PUNCHES)
    row = await uow.get(Punch, punch_id)
    if row is None or not row.manual:
        raise NotFound(f"there is no manual punch #{punch_id}.")
    if row.approval != Approval.PENDING:
        raise ValidationFailed(f"manual punch #{punch_id} is already {row.approval}.")
    row.approval = Approval.APPROVED if approve else Approval.REJECTED
    row.decided_by, row.decided_at = actor.username[:64], utcnow()
    await uow.flush()
    if approve:
        await recompute_days(uow, await _days_of(uow, [(row.employee_id, row.punched_at)]))
    audit.record(
        uow,
        actor=actor,
        action="punch.approve" if approve else "punch.reject",
        target_type="punch",
        target_id=row.id,
        detail=f"{row.punched_at:%Y-%m-%d %H:%M} {row.direction}",
    )
    uow.emit(updated("punch", row.id, f"punch.{row.approval}"))
    return await _info(uow, row)


async def list_punches(
    uow: UnitOfWork,
    *,
    actor: Actor,
    approval: str | None = None,
    employee: str | None = None,
    day: str | date | None = None,
    limit: int = 500,
) -> list[PunchInfo]:
    """Punches newest first: the approval queue (`approval="pending"`) or one employee's day."""
    require(actor, Action.VIEW_ATTENDANCE)
    query = (
        select(Punch, Employee.code, Employee.name)
        .join(Employee, Employee.id == Punch.employee_id)
        .order_by(Punch.punched_at.desc(), Punch.id.desc())
        .limit(max(1, min(limit, 5000)))
    )
    if approval:
        query = query.where(Punch.approval == Approval(approval))
    if employee:
        query = query.where(Punch.employee_id == (await find_employee(uow, employee)).id)
    if day:
        when = parse_date(day)
        low = datetime.combine(when, datetime.min.time())
        high = datetime.combine(date.fromordinal(when.toordinal() + 2), datetime.min.time())
        query = query.where(Punch.punched_at >= low, Punch.punched_at < high)
    return [PunchInfo.of(p, c, n) for p, c, n in await uow.execute(query)]


async def punches_of_day(
    uow: UnitOfWork, *, actor: Actor, employee: str, day: str | date
) -> list[PunchInfo]:
    """Every punch (manual ones in any state) that belongs to one attendance day of one
    employee by the day rule (`rules.assign_day`): a night shift's morning punches included."""
    require(actor, Action.VIEW_ATTENDANCE)
    emp = await find_employee(uow, employee)
    shift = await uow.get(Shift, emp.shift_id)
    when = parse_date(day)
    low = datetime.combine(date.fromordinal(when.toordinal() - 1), datetime.min.time())
    high = datetime.combine(date.fromordinal(when.toordinal() + 3), datetime.min.time())
    rows = (
        await uow.scalars(
            select(Punch)
            .where(Punch.employee_id == emp.id, Punch.punched_at >= low, Punch.punched_at < high)
            .order_by(Punch.punched_at, Punch.id)
        )
    ).all()
    target = PR.day_number(when)
    mine = []
    for row in rows:
        cal, minute = divmod(PR.minute_number(row.punched_at), R.MINUTES_PER_DAY)
        got, rel = R.assign_day(cal, minute, shift.start_minute, shift.end_minute)
        if rel == rel and got == target:
            mine.append(PunchInfo.of(row, emp.code, emp.name))
    return mine
