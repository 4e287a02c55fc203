"""Per-department validation profiles replace the global gradebook default (migration 0005)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from batchops_core.accounts import UserInfo
from batchops_core.enums import Role, Stage, UploadStatus
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.known_errors import KnownErrorInfo, matches
from batchops_core.models import Department, KnownError
from batchops_core.permissions import SYSTEM
from batchops_core.pipeline.profile import ValidationProfile
from batchops_core.pipeline.runner import run_upload
from batchops_core.pipeline.validate import requirements
from batchops_core.services.departments import create_department, update_department
from batchops_core.services.uploads import intake_file
from tests.admin.conftest import GRADEBOOK, LIBRARY, put


def test_requirements_follow_the_profile() -> None:
    library = ValidationProfile(False, None, ("student_id", "Book ID"))
    req = requirements("Library", profile=library)
    assert (req.columns, req.gradebook, req.key) == (("student_id", "book_id"), False, None)
    exams = ValidationProfile(True, "student_id", ())
    req = requirements("Exams", profile=exams)
    assert (req.columns, req.gradebook, req.key) == (("student_id",), True, "student_id")
    keyed = ValidationProfile(False, "Roll No", ("name",))
    assert requirements("X", profile=keyed).columns == ("roll_no", "name")
    # the legacy [pipeline.required_columns] entry still wins, exactly as before
    legacy = requirements("Exams", configured={"exams": ["a"]}, profile=exams)
    assert (legacy.columns, legacy.gradebook) == (("a",), False)
    # no department row: the gradebook default as before; manual: nothing assumed
    assert requirements("Unknown feed").gradebook is True
    assert requirements("manual").gradebook is False


async def test_migration_makes_library_a_non_gradebook_profile(db: Database) -> None:
    async with db.unit() as uow:
        rows = {d.name: d for d in await uow.scalars(select(Department))}
        alias = await uow.scalar(
            select(KnownError).where(KnownError.name == "Student identifier under another name")
        )
        assert alias is not None
        info = KnownErrorInfo.of(alias)
    assert rows["Library"].gradebook is False and rows["Library"].key_column is None
    assert rows["Library"].required_columns == ["student_id", "book_id", "borrowed_on"]
    assert all(rows[n].gradebook for n in ("Admissions", "Attendance", "Fees", "Exams"))
    assert rows["Exams"].key_column == "student_id" and rows["Exams"].aliases == {}
    # the alias pattern no longer catches a missing *score* whose message lists student_id
    score = "required column 'score' not found: a gradebook needs ...; the file has: student_id"
    assert not matches(info, "MISSING_COLUMN", score, Stage.VALIDATE)
    missing_id = "required column 'student_id' not found; the file has: roll_no, maths"
    assert matches(info, "MISSING_COLUMN", missing_id, Stage.VALIDATE)


async def test_library_feed_publishes_and_a_gradebook_profile_still_fails_it(
    db: Database, db_settings: Settings, users: dict[Role, UserInfo], tmp_path: Path
) -> None:
    user = users[Role.USER].actor
    path = put(tmp_path, "loans.csv", LIBRARY)
    first = await intake_file(db, db_settings, user, path, source="Library")
    outcome = await run_upload(db, db_settings, first.id, worker="w1")
    assert outcome.status == UploadStatus.PUBLISHED.value, outcome.error_message

    async with db.unit() as uow:
        await update_department(uow, actor=SYSTEM, ref="Library", gradebook=True)
    again = await intake_file(db, db_settings, user, path, source="Library", force=True)
    failed = await run_upload(db, db_settings, again.id, worker="w1")
    assert failed.status == "failed" and failed.error_code == "MISSING_COLUMN"
    assert "numeric score" in (failed.error_message or "")


async def test_department_aliases_and_key_apply_to_the_next_upload(
    db: Database, db_settings: Settings, users: dict[Role, UserInfo], tmp_path: Path
) -> None:
    async with db.unit() as uow:
        await create_department(
            uow,
            actor=SYSTEM,
            name="Sports",
            gradebook=True,
            key_column="student_id",
            required_columns="class",
            aliases="Pupil Code=student_id",
        )
    content = GRADEBOOK.replace("Student ID", "Pupil Code")
    path = put(tmp_path, "sports.csv", content)
    info = await intake_file(db, db_settings, users[Role.USER].actor, path, source="sports")
    outcome = await run_upload(db, db_settings, info.id, worker="w1")
    assert outcome.status == "published", outcome.error_message

    async with db.unit() as uow:
        await update_department(uow, actor=SYSTEM, ref="Sports", aliases={})
    again = await intake_file(
        db, db_settings, users[Role.USER].actor, path, source="sports", force=True
    )
    failed = await run_upload(db, db_settings, again.id, worker="w1")
    assert failed.error_code == "MISSING_COLUMN" and "student_id" in (failed.error_message or "")


async def test_migration_matches_the_department_model(db: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from batchops_core.models import Base

    def compare(sync_conn: object) -> list[object]:
        context = MigrationContext.configure(
            sync_conn, opts={"compare_type": False, "render_as_batch": True}
        )
        return [d for d in compare_metadata(context, Base.metadata) if "departments" in repr(d)]

    async with db.engine.connect() as conn:
        diffs = await conn.run_sync(compare)
    assert diffs == []


async def test_migration_keeps_records_and_links_and_downgrades(
    db: Database, users: dict[Role, UserInfo]
) -> None:
    """0005 adds columns in place: a table rebuild would cascade into department_records and
    clear every user's department (SQLite runs with foreign keys on)."""
    from alembic import command
    from sqlalchemy import func, text

    from batchops_core.infra.migrate import alembic_config, upgrade
    from batchops_core.models import DepartmentRecord, User
    from batchops_core.services.departments import set_user_department

    async with db.unit() as uow:
        await set_user_department(uow, actor=SYSTEM, username="user1", department="Fees")
        records = await uow.scalar(select(func.count()).select_from(DepartmentRecord))

    def down(conn: object) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")

    async with db.engine.begin() as conn:
        await conn.run_sync(down)
        columns = (await conn.execute(text("SELECT * FROM departments"))).keys()
        alias = (await conn.execute(text("SELECT pattern FROM known_errors WHERE id = 3"))).scalar()
    assert "gradebook" not in columns and alias == r"^MISSING_COLUMN: .*student_id"
    await upgrade(db)
    async with db.unit() as uow:
        after = await uow.scalar(select(func.count()).select_from(DepartmentRecord))
        dept = await uow.scalar(select(User.department_id).where(User.username == "user1"))
        fees = await uow.scalar(select(Department.id).where(Department.name == "Fees"))
    assert records and after == records and dept == fees
