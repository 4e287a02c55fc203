"""`init --demo` makes the demo departments real sources: a log database and drop folders whose
data arrives through real syncs, and the departments' arrivals are recorded."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from batchops_core.attendance.models import Punch
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Department, Upload
from batchops_core.sources.demo import seed_demo_sources
from batchops_core.sources.models import JobStatus, Source, SourceJob, SourceRecord
from batchops_core.worker.dispatcher import Dispatcher


async def test_demo_sources_sync_for_real_and_once(db: Database, db_settings: Settings) -> None:
    dispatcher = Dispatcher(db, db_settings)
    try:
        lines = await seed_demo_sources(db, db_settings, dispatcher)
        again = await seed_demo_sources(db, db_settings, dispatcher)
    finally:
        await dispatcher.close()
    assert (Path(db_settings.data_dir) / "demo" / "gate_log.db").is_file()
    (logged,) = [int(line.split(" with ")[1].split()[0]) for line in lines if "punches" in line]
    assert f"Attendance gate log (database, Attendance): {logged} rows" in "\n".join(lines)
    assert any("employee-days processed" in line for line in lines), lines
    assert sum("already exists" in line for line in again) == 3
    async with db.unit() as uow:
        sources = dict((await uow.execute(select(Source.name, Source.last_success_at))).all())
        records = await uow.scalar(select(func.count()).select_from(SourceRecord))
        failed = await uow.scalar(
            select(func.count())
            .select_from(SourceJob)
            .where(SourceJob.status != JobStatus.SUCCEEDED)
        )
        uploads = list(await uow.scalars(select(Upload.source).order_by(Upload.id)))
        punches = await uow.scalar(select(func.count()).select_from(Punch))
        submitted = dict(
            (await uow.execute(select(Department.name, Department.last_submitted_at))).all()
        )
    assert len(sources) == 3 and all(sources.values())
    assert failed == 0 and records == 2 * 30 + 2 * 25, "the gate log feeds punches, not records"
    assert punches == logged
    assert uploads == ["Exams", "Library", "Exams", "Library"] or sorted(uploads) == [
        "Exams",
        "Exams",
        "Library",
        "Library",
    ]
    assert submitted["Attendance"] and submitted["Exams"] and submitted["Library"]
    assert submitted["Fees"] is None  # no arrival, so the reminder is right to ask
