"""A–WO–A corrections: recorded runs that can be reverted exactly.

A run finds week-off and holiday days sandwiched between two absences (`rules.awo_targets`),
marks them A and records every change (employee, day, before, after) in one correction run.
The status itself is written by recomputing the changed days with the run's corrections laid
over them (`daywrite.overlay_corrections`, as every later recompute does while the computed
status is still the correction's `before`). `revert_awo` deactivates the run's changes and
recomputes the same days, which puts back the status before the run: nothing else is touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select

from batchops_core import audit
from batchops_core.attendance.days import date_range, recompute_days
from batchops_core.attendance.enums import CorrectionKind, DayStatus
from batchops_core.attendance.models import AttendanceDay, Correction, CorrectionRun, Employee
from batchops_core.attendance.rules import awo_targets
from batchops_core.attendance.views import updated
from batchops_core.errors import NotFound, ValidationFailed
from batchops_core.infra.clock import utcnow
from batchops_core.infra.db import UnitOfWork
from batchops_core.permissions import Action, Actor, require

MARGIN = timedelta(days=14)
"""Days looked at around the range, so a week off on its first or last day sees its neighbours."""


@dataclass(frozen=True)
class CorrectionItem:
    employee: str
    day: date
    before: str
    after: str
    active: bool


@dataclass(frozen=True)
class CorrectionRunInfo:
    id: int
    kind: str
    date_from: date
    date_to: date
    actor: str
    created_at: datetime
    changes: int
    reverted_at: datetime | None
    reverted_by: str
    items: tuple[CorrectionItem, ...] = ()


async def _run_info(uow: UnitOfWork, run: CorrectionRun) -> CorrectionRunInfo:
    rows = await uow.execute(
        select(Correction, Employee.code)
        .join(Employee, Employee.id == Correction.employee_id)
        .where(Correction.run_id == run.id)
        .order_by(Employee.code, Correction.day)
    )
    items = tuple(
        CorrectionItem(code, c.day, str(c.before), str(c.after), c.active) for c, code in rows
    )
    return CorrectionRunInfo(
        id=run.id,
        kind=str(run.kind),
        date_from=run.date_from,
        date_to=run.date_to,
        actor=run.actor_name,
        created_at=run.created_at,
        changes=run.changes,
        reverted_at=run.reverted_at,
        reverted_by=run.reverted_by,
        items=items,
    )


def _targets(days: list[AttendanceDay], first: date, last: date) -> list[AttendanceDay]:
    """Sandwiched rest days of one employee's days (split where a day is missing)."""
    found: list[AttendanceDay] = []
    run: list[AttendanceDay] = []
    for day in [*days, None]:
        if day is not None and run and (day.day - run[-1].day).days == 1:
            run.append(day)
            continue
        found += [run[i] for i in awo_targets([str(d.status) for d in run])]
        run = [day] if day is not None else []
    return [d for d in found if first <= d.day <= last]


async def correct_awo(
    uow: UnitOfWork,
    *,
    actor: Actor,
    date_from: str | date | None = None,
    date_to: str | date | None = None,
) -> CorrectionRunInfo:
    """Mark A every WO/PH day between two absences in [from, to]; one recorded run."""
    require(actor, Action.CORRECT_ATTENDANCE)
    first, last = date_range(date_from, date_to)
    days = (
        await uow.scalars(
            select(AttendanceDay)
            .where(AttendanceDay.day >= first - MARGIN, AttendanceDay.day <= last + MARGIN)
            .order_by(AttendanceDay.employee_id, AttendanceDay.day)
        )
    ).all()
    by_employee: dict[int, list[AttendanceDay]] = {}
    for day in days:
        by_employee.setdefault(day.employee_id, []).append(day)
    run = CorrectionRun(
        kind=CorrectionKind.AWO, date_from=first, date_to=last, actor_name=actor.username[:64]
    )
    uow.add(run)
    await uow.flush()
    keys: set[tuple[int, date]] = set()
    for employee_days in by_employee.values():
        for day in _targets(employee_days, first, last):
            uow.add(
                Correction(
                    run_id=run.id,
                    employee_id=day.employee_id,
                    day=day.day,
                    before=day.status,
                    after=DayStatus.ABSENT,
                    active=True,
                )
            )
            keys.add((day.employee_id, day.day))
    run.changes = changes = len(keys)
    await uow.flush()
    await recompute_days(uow, keys)  # the overlay writes A, the flag and the row's digest
    audit.record(
        uow,
        actor=actor,
        action="attendance.correct_awo",
        target_type="correction_run",
        target_id=run.id,
        target_name=f"{first}..{last}",
        detail=f"{changes} days marked A",
    )
    uow.emit(updated("correction", run.id, "corrected", changes=changes))
    return await _run_info(uow, run)


async def revert_awo(uow: UnitOfWork, *, actor: Actor, run_id: int) -> CorrectionRunInfo:
    """Undo exactly what run `run_id` changed."""
    require(actor, Action.CORRECT_ATTENDANCE)
    run = await uow.get(CorrectionRun, run_id)
    if run is None:
        raise NotFound(f"there is no correction run #{run_id}.")
    if run.reverted_at is not None:
        raise ValidationFailed(
            f"correction run #{run_id} was already reverted by {run.reverted_by} "
            f"at {run.reverted_at:%Y-%m-%d %H:%M} UTC."
        )
    changes = (
        await uow.scalars(
            select(Correction).where(Correction.run_id == run.id, Correction.active.is_(True))
        )
    ).all()
    for change in changes:
        change.active = False
    await uow.flush()
    await recompute_days(uow, {(c.employee_id, c.day) for c in changes})
    run.reverted_at, run.reverted_by = utcnow(), actor.username[:64]
    await uow.flush()
    audit.record(
        uow,
        actor=actor,
        action="attendance.revert_awo",
        target_type="correction_run",
        target_id=run.id,
        detail=f"{len(changes)} days restored",
    )
    uow.emit(updated("correction", run.id, "reverted", changes=len(changes)))
    return await _run_info(uow, run)


async def list_correction_runs(
    uow: UnitOfWork, *, actor: Actor, limit: int = 50
) -> list[CorrectionRunInfo]:
    require(actor, Action.VIEW_ATTENDANCE)
    runs = await uow.scalars(
        select(CorrectionRun).order_by(CorrectionRun.id.desc()).limit(max(1, min(limit, 500)))
    )
    return [await _run_info(uow, r) for r in runs.all()]
