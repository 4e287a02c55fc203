"""`overdue_schedules`, on SQLite and PostgreSQL: a past `next_run_at` is reported as it is
recorded (Home's warning), a firing within the grace period or a disabled schedule is not."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from batchops_core.enums import Role
from batchops_core.models import Job
from batchops_core.services.overdue import GRACE, overdue_schedules
from tests.tui.seed import NOW


async def test_overdue_schedules_as_recorded(db, users) -> None:
    async with db.unit() as session:
        ids = (await session.execute(select(Job.id).order_by(Job.id))).scalars().all()
        await session.execute(update(Job).values(next_run_at=NOW + timedelta(hours=1)))
        late, soon, off = ids[0], ids[1], ids[2]
        await session.execute(
            update(Job).where(Job.id == late).values(next_run_at=NOW - timedelta(hours=3))
        )
        await session.execute(update(Job).where(Job.id == soon).values(next_run_at=NOW - GRACE / 2))
        await session.execute(
            update(Job)
            .where(Job.id == off)
            .values(next_run_at=NOW - timedelta(days=1), enabled=False)
        )
    async with db.unit() as session:
        found = await overdue_schedules(session, actor=users[Role.USER].actor, now=NOW)
    assert [o.id for o in found] == [late]
    assert found[0].due_at == NOW - timedelta(hours=3)
