"""Schedules whose recorded next firing has passed without being fired: what Home warns about.

The dashboard's "next firings" card recomputes a fresh time when the stored `next_run_at` is in
the past, which hid exactly the case an operator must see: no daemon is firing schedules (the
embedded mode of the TUI fires none). This read-only query reports them as they are recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core.models import Job
from batchops_core.permissions import Action, Actor, require

GRACE = timedelta(minutes=2)
"""A firing a dispatcher is about to take is not overdue yet (it polls every few seconds)."""


@dataclass(frozen=True)
class OverdueSchedule:
    id: int
    name: str
    due_at: datetime


async def overdue_schedules(
    session: AsyncSession, *, actor: Actor, now: datetime, limit: int = 20
) -> tuple[OverdueSchedule, ...]:
    """Enabled schedules whose `next_run_at` is more than GRACE in the past, oldest first."""
    require(actor, Action.VIEW_RUNS)
    rows = await session.execute(
        select(Job.id, Job.name, Job.next_run_at)
        .where(Job.enabled.is_(True), Job.next_run_at < now - GRACE)
        .order_by(Job.next_run_at)
        .limit(limit)
    )
    return tuple(OverdueSchedule(id=r.id, name=r.name, due_at=r.next_run_at) for r in rows)
