"""Departments admin service: create, edit, rename, deactivate, users' departments."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from batchops_core.accounts import UserInfo
from batchops_core.enums import Role
from batchops_core.errors import PermissionDenied, ValidationFailed
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import AuditLog, Job, Upload, User
from batchops_core.services.departments import (
    create_department,
    get_department,
    list_departments,
    set_department_active,
    set_user_department,
    update_department,
)
from batchops_core.services.uploads import intake_file
from tests.admin.conftest import GRADEBOOK, put

Users = dict[Role, UserInfo]


async def test_create_edit_and_list(db: Database, users: Users) -> None:
    admin = users[Role.ADMIN].actor
    async with db.unit() as uow:
        row = await create_department(
            uow,
            actor=admin,
            name="  Sports   Club ",
            contact_email="coach@school.example",
            required_columns="Student ID, Event, event",
            aliases={"Pupil": "student_id"},
        )
    assert row.name == "Sports Club" and row.gradebook is False
    assert row.required_columns == ("student_id", "event") and row.aliases == {
        "pupil": "student_id"
    }
    async with db.unit() as uow:
        edited = await update_department(
            uow, actor=admin, ref="sports club", gradebook=True, key_column="none"
        )
        audit = (
            await uow.scalars(select(AuditLog.detail).where(AuditLog.action == "department.update"))
        ).all()
        listed = await list_departments(uow, actor=users[Role.USER].actor)
    assert edited.gradebook is True and edited.key_column is None
    assert any("gradebook: False -> True" in d for d in audit)
    assert [d.name for d in listed] == sorted((d.name for d in listed), key=str.lower)
    assert "Sports Club" in {d.name for d in listed}


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"name": "manual"}, "cannot name a department"),
        ({"name": "exams"}, "already exists"),
        ({"contact_email": "not an email"}, "not a valid email"),
        ({"aliases": "Roll No"}, "HEADER=column"),
        ({"required_columns": ["!!!"]}, "no letters or digits"),
        ({"colour": "red"}, "cannot change colour"),
    ],
)
async def test_bad_input_is_refused_in_one_sentence(
    db: Database, users: Users, changes: dict[str, object], needle: str
) -> None:
    async with db.unit() as uow:
        with pytest.raises(ValidationFailed, match=needle):
            await update_department(uow, actor=users[Role.ADMIN].actor, ref="Fees", **changes)
    async with db.unit() as uow:
        fees = await get_department(uow, actor=users[Role.ADMIN].actor, ref="Fees")
    assert fees.name == "Fees" and fees.contact_email == "fees@school.example"


async def test_only_admins_change_departments(db: Database, users: Users) -> None:
    async with db.unit() as uow:
        with pytest.raises(PermissionDenied):
            await update_department(
                uow, actor=users[Role.MODERATOR].actor, ref="Fees", gradebook=False
            )
        with pytest.raises(PermissionDenied):
            await set_user_department(
                uow, actor=users[Role.MODERATOR].actor, username="user1", department="Fees"
            )


async def test_rename_carries_uploads_and_schedules(
    db: Database, db_settings: Settings, users: Users, tmp_path: Path
) -> None:
    path = put(tmp_path, "fees.csv", GRADEBOOK)
    info = await intake_file(db, db_settings, users[Role.USER].actor, path, source="Fees")
    async with db.unit() as uow:
        await update_department(uow, actor=users[Role.ADMIN].actor, ref="Fees", name="Finance")
    async with db.unit() as uow:
        upload = await uow.get(Upload, info.id)
        args = (await uow.scalars(select(Job.arguments).where(Job.name == "Ingest Fees"))).one()
    assert upload is not None and upload.source == "Finance"
    assert args == {"department": "Finance"}


async def test_deactivated_department_takes_no_uploads(
    db: Database, db_settings: Settings, users: Users, tmp_path: Path
) -> None:
    admin = users[Role.ADMIN].actor
    async with db.unit() as uow:
        row = await set_department_active(uow, actor=admin, ref="Library", active=False)
    assert row.active is False
    path = put(tmp_path, "loans.csv", GRADEBOOK)
    with pytest.raises(ValidationFailed, match="Library is deactivated"):
        await intake_file(db, db_settings, users[Role.USER].actor, path, source="library")
    async with db.unit() as uow:
        with pytest.raises(ValidationFailed, match="deactivated"):
            await set_user_department(uow, actor=admin, username="user1", department="Library")
        await set_department_active(uow, actor=admin, ref="Library", active=True)
    again = await intake_file(db, db_settings, users[Role.USER].actor, path, source="library")
    assert again.source == "Library"


async def test_users_department_is_set_and_cleared(db: Database, users: Users) -> None:
    admin = users[Role.ADMIN].actor
    async with db.unit() as uow:
        name = await set_user_department(uow, actor=admin, username="USER1", department="exams")
        row = await get_department(uow, actor=admin, ref="Exams")
    assert name == "Exams" and row.members == 1
    async with db.unit() as uow:
        assert await set_user_department(uow, actor=admin, username="user1", department="") is None
        dept = await uow.scalar(select(User.department_id).where(User.username == "user1"))
    assert dept is None
