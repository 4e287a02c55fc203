"""`batchops init --demo` data: accounts per role and uploads already through the real pipeline."""

from sqlalchemy import func, select

from batchops_core.demo import DEMO_USERS, seed_demo
from batchops_core.enums import IncidentStatus, UploadStatus
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Incident, Upload, User


async def test_demo_seed_shows_every_outcome_and_is_idempotent(
    db: Database, db_settings: Settings
) -> None:
    await seed_demo(db, db_settings)
    async with db.unit() as session:
        names = set(await session.scalars(select(User.username)))
        statuses = dict(
            (
                await session.execute(
                    select(Upload.filename, Upload.status).where(Upload.uploader_id.is_not(None))
                )
            ).all()
        )  # the operator's demo uploads (the demo sources' files are the system's)
        before = await session.scalar(select(func.count()).select_from(Upload))
        incident = await session.scalar(select(Incident))
    assert set(DEMO_USERS) <= names
    assert statuses == {
        "exams_term1.csv": UploadStatus.PUBLISHED,
        "attendance_week46.csv": UploadStatus.PARTIAL,
        "fees_export_broken.csv": UploadStatus.FAILED,
    }
    assert incident is not None and incident.status is IncidentStatus.OPEN
    assert incident.error_code == "MISSING_COLUMN" and "student_id" in incident.message

    again = await seed_demo(db, db_settings)
    async with db.unit() as session:
        uploads = await session.scalar(select(func.count()).select_from(Upload))
    assert uploads == before
    assert "demo uploads skipped: the database already has uploads." in again
