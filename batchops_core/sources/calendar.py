"""The school calendar: terms and holidays that decide which days are "school days".

Admins edit it (`EDIT_CALENDAR`); everyone may read it. Dates are inclusive; a holiday inside a
term removes its days; with no term entered every weekday outside holidays is a school day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import delete, select

from batchops_core import audit
from batchops_core.errors import NotFound, ValidationFailed
from batchops_core.infra import events
from batchops_core.infra.db import UnitOfWork
from batchops_core.permissions import Action, Actor, require
from batchops_core.sources.cadence import CalendarSpan
from batchops_core.sources.models import CalendarEntry, CalendarKind


@dataclass(frozen=True)
class CalendarRow:
    id: int
    kind: CalendarKind
    name: str
    starts_on: date
    ends_on: date

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "name": self.name,
            "from": self.starts_on.isoformat(),
            "to": self.ends_on.isoformat(),
        }


def _row(entry: CalendarEntry) -> CalendarRow:
    return CalendarRow(
        entry.id, CalendarKind(entry.kind), entry.name, entry.starts_on, entry.ends_on
    )


async def spans(uow: UnitOfWork) -> list[CalendarSpan]:
    """The whole calendar for expected-day arithmetic (a school has tens of entries)."""
    rows = await uow.scalars(select(CalendarEntry).order_by(CalendarEntry.starts_on))
    return [CalendarSpan(CalendarKind(r.kind), r.name, r.starts_on, r.ends_on) for r in rows]


async def list_calendar(uow: UnitOfWork, *, actor: Actor) -> list[CalendarRow]:
    require(actor, Action.VIEW_SOURCES)
    rows = await uow.scalars(
        select(CalendarEntry).order_by(CalendarEntry.starts_on, CalendarEntry.id)
    )
    return [_row(r) for r in rows]


async def add_calendar_entry(
    uow: UnitOfWork, *, actor: Actor, kind: CalendarKind | str, name: str, start: date, end: date
) -> CalendarRow:
    require(actor, Action.EDIT_CALENDAR)
    try:
        entry_kind = CalendarKind(str(kind).strip().lower())
    except ValueError:
        raise ValidationFailed(f"a calendar entry is a term or a holiday, not {kind!r}.") from None
    clean = " ".join(name.split())
    if not clean or len(clean) > 100:
        raise ValidationFailed("a calendar entry needs a name of 1 to 100 characters.")
    if end < start:
        raise ValidationFailed(f"{clean} ends ({end}) before it starts ({start}).")
    entry = CalendarEntry(kind=entry_kind, name=clean, starts_on=start, ends_on=end)
    uow.add(entry)
    await uow.flush()
    audit.record(
        uow,
        actor=actor,
        action="calendar.add",
        target_type="calendar",
        target_id=entry.id,
        target_name=clean,
        detail=f"{entry_kind.value} {start} to {end}",
    )
    uow.emit(events.Event(type="calendar.updated", id=entry.id, status="added"))
    return _row(entry)


async def remove_calendar_entry(uow: UnitOfWork, *, actor: Actor, entry_id: int) -> CalendarRow:
    require(actor, Action.EDIT_CALENDAR)
    entry = await uow.get(CalendarEntry, entry_id)
    if entry is None:
        raise NotFound(f"there is no calendar entry #{entry_id}.")
    row = _row(entry)
    await uow.execute(delete(CalendarEntry).where(CalendarEntry.id == entry_id))
    audit.record(
        uow,
        actor=actor,
        action="calendar.remove",
        target_type="calendar",
        target_id=entry_id,
        target_name=row.name,
    )
    uow.emit(events.Event(type="calendar.updated", id=entry_id, status="removed"))
    return row
