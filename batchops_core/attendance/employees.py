"""Employees: who is counted, on which shift, from joining to leaving (admins manage them)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from batchops_core import audit
from batchops_core.attendance.files import EMPLOYEE_COLUMNS, pick, read_rows, require_columns
from batchops_core.attendance.models import Employee, Shift
from batchops_core.attendance.views import EmployeeInfo, ImportResult, parse_date, updated
from batchops_core.errors import NotFound, ValidationFailed
from batchops_core.infra.db import UnitOfWork
from batchops_core.permissions import Action, Actor, require

FIELDS = frozenset({"name", "shift", "department", "joined", "left"})


async def _shift_id(uow: UnitOfWork, name: str) -> tuple[int, str]:
    text = str(name or "").strip()
    row = await uow.scalar(select(Shift).where(func.lower(Shift.name) == text.lower()))
    if row is None:
        raise ValidationFailed(f"there is no shift named '{text}'; add it with `shift add`.")
    return row.id, row.name


def _date_or_none(value: Any, what: str) -> date | None:
    return None if value in (None, "") else parse_date(value, what)


async def find_employee(uow: UnitOfWork, code: str) -> Employee:
    row = await uow.scalar(select(Employee).where(Employee.code == str(code).strip()))
    if row is None:
        raise NotFound(f"there is no employee with code '{code}'.")
    return row


async def _info(uow: UnitOfWork, row: Employee) -> EmployeeInfo:
    shift = await uow.scalar(select(Shift.name).where(Shift.id == row.shift_id))
    return EmployeeInfo.of(row, shift or "")


async def _set(uow: UnitOfWork, row: Employee, changes: dict[str, Any]) -> None:
    unknown = sorted(set(changes) - FIELDS)
    if unknown:
        raise ValidationFailed(f"cannot change {', '.join(unknown)} of an employee.")
    if "name" in changes:
        row.name = " ".join(str(changes["name"] or "").split())[:200]
        if not row.name:
            raise ValidationFailed(f"employee '{row.code}' has no name.")
    if "shift" in changes:
        row.shift_id, _ = await _shift_id(uow, changes["shift"])
    if "department" in changes:
        row.department = " ".join(str(changes["department"] or "").split())[:100]
    if "joined" in changes:
        row.joined = _date_or_none(changes["joined"], "joining date")
    if "left" in changes:
        row.left = _date_or_none(changes["left"], "leaving date")
    if row.joined and row.left and row.left < row.joined:
        raise ValidationFailed(f"employee '{row.code}' cannot leave before joining.")


def _clean_code(code: str) -> str:
    clean = str(code or "").strip()
    if not clean or len(clean) > 64 or any(c.isspace() for c in clean):
        raise ValidationFailed(f"employee code '{code}' must be 1–64 characters without spaces.")
    return clean


async def add_employee(
    uow: UnitOfWork, *, actor: Actor, code: str, name: str, shift: str, **fields: Any
) -> EmployeeInfo:
    """A new employee; fields: department, joined, left (dates as 2026-11-02)."""
    require(actor, Action.MANAGE_ATTENDANCE)
    clean = _clean_code(code)
    if await uow.scalar(select(Employee.id).where(Employee.code == clean)) is not None:
        raise ValidationFailed(f"an employee with code '{clean}' already exists.")
    row = Employee(code=clean, department="")
    await _set(uow, row, {"name": name, "shift": shift, **fields})
    uow.add(row)
    await uow.flush()
    audit.record(
        uow,
        actor=actor,
        action="employee.create",
        target_type="employee",
        target_id=row.id,
        target_name=clean,
        detail=f"{row.name}, {row.department or 'no department'}",
    )
    uow.emit(updated("employee", row.id, "employee.created"))
    return await _info(uow, row)


async def edit_employee(
    uow: UnitOfWork, *, actor: Actor, code: str, **changes: Any
) -> EmployeeInfo:
    require(actor, Action.MANAGE_ATTENDANCE)
    row = await find_employee(uow, code)
    await _set(uow, row, changes)
    await uow.flush()
    audit.record(
        uow,
        actor=actor,
        action="employee.update",
        target_type="employee",
        target_id=row.id,
        target_name=row.code,
        detail=", ".join(f"{k}={v}" for k, v in sorted(changes.items())),
    )
    uow.emit(updated("employee", row.id, "employee.updated"))
    return await _info(uow, row)


async def remove_employee(uow: UnitOfWork, *, actor: Actor, code: str) -> EmployeeInfo:
    """Deletes the employee with their punches and days: for mistakes; set `left` otherwise."""
    require(actor, Action.MANAGE_ATTENDANCE)
    row = await find_employee(uow, code)
    info = await _info(uow, row)
    await uow.delete(row)
    audit.record(
        uow,
        actor=actor,
        action="employee.delete",
        target_type="employee",
        target_id=info.id,
        target_name=info.code,
    )
    uow.emit(updated("employee", info.id, "employee.deleted"))
    return info


async def list_employees(
    uow: UnitOfWork, *, actor: Actor, department: str | None = None, search: str | None = None
) -> list[EmployeeInfo]:
    require(actor, Action.VIEW_ATTENDANCE)
    query = select(Employee, Shift.name).join(Shift, Shift.id == Employee.shift_id)
    if department:
        query = query.where(func.lower(Employee.department) == department.strip().lower())
    if search:
        like = f"%{search.strip().lower()}%"
        query = query.where(
            func.lower(Employee.code).like(like) | func.lower(Employee.name).like(like)
        )
    rows = await uow.execute(query.order_by(Employee.department, Employee.code))
    return [EmployeeInfo.of(e, s) for e, s in rows]


async def list_departments(uow: UnitOfWork, *, actor: Actor) -> list[str]:
    require(actor, Action.VIEW_ATTENDANCE)
    rows = await uow.scalars(select(Employee.department).distinct().order_by(Employee.department))
    return [r for r in rows if r]


async def _fill(uow: UnitOfWork, row: Employee, shift_id: int, raw: dict[str, str]) -> None:
    """Set one imported row's fields, or leave the employee untouched and raise."""
    keys = ("name", "department", "joined", "left", "shift_id")
    snapshot = {k: getattr(row, k) for k in keys}
    try:
        row.shift_id = shift_id
        await _set(uow, row, {k: raw[k] for k in keys[:4] if k in raw})
    except ValidationFailed:
        for key, value in snapshot.items():
            setattr(row, key, value)
        raise


async def import_employees(uow: UnitOfWork, *, actor: Actor, path: Path) -> ImportResult:
    """CSV/XLSX with code, name, shift, department, joined (left optional): new codes are
    added, known codes updated; a bad row is reported with its row number and skipped."""
    require(actor, Action.MANAGE_ATTENDANCE)
    rows = pick(read_rows(path), EMPLOYEE_COLUMNS)
    require_columns(rows, path, "code", "name", "shift")
    shifts = {n.lower(): i for i, n in (await uow.execute(select(Shift.id, Shift.name))).all()}
    known = {e.code: e for e in await uow.scalars(select(Employee))}
    added = changed = 0
    problems: list[str] = []
    for raw in rows:
        try:
            code = _clean_code(raw["code"])
            shift_id = shifts.get(raw["shift"].strip().lower())
            if shift_id is None:
                raise ValidationFailed(f"there is no shift named '{raw['shift']}'")
            row = known.get(code)
            target = row if row is not None else Employee(code=code, department="")
            await _fill(uow, target, shift_id, raw)
            if row is None:
                uow.add(target)
                known[code] = target
                added += 1
            else:
                changed += 1
        except ValidationFailed as exc:
            problems.append(f"row {raw['_row']}: {str(exc).rstrip('.')}.")
    await uow.flush()
    audit.record(
        uow,
        actor=actor,
        action="employee.import",
        target_type="employee",
        target_name=path.name,
        detail=f"{added} added, {changed} updated, {len(problems)} rows refused",
    )
    uow.emit(updated("employee", None, "employee.imported", added=added, updated=changed))
    return ImportResult(added=added, updated=changed, problems=tuple(problems))
