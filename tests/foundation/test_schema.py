"""The migrations build the whole schema and the seed data on both databases."""

from sqlalchemy import func, select

from batchops_core.infra.db import Database
from batchops_core.infra.migrate import current_revision, ensure_current, head_revision, upgrade
from batchops_core.models import Department, DepartmentRecord, Job, KnownError


async def test_seeded_reference_data(db: Database) -> None:
    async with db.unit() as session:
        names = set(await session.scalars(select(Department.name)))
        records = await session.scalar(select(func.count()).select_from(DepartmentRecord))
        tasks = list(await session.scalars(select(Job.task)))
        known = await session.scalar(select(func.count()).select_from(KnownError))
    assert names == {"Admissions", "Attendance", "Fees", "Library", "Exams"}
    assert records == 200
    assert tasks.count("ingest_department") == 5
    assert {
        "ingest_all_departments",
        "send_system_status_digest",
        "run_daily_backup",
        "purge_old_records",
    } <= set(tasks)
    assert known and known >= 5


async def test_upgrade_is_idempotent(db: Database) -> None:
    before, after = await upgrade(db)
    assert before == after == head_revision() == await current_revision(db)
    await ensure_current(db)
