"""Known errors admin: add, edit, disable, delete, RE2-only patterns, test on recent incidents."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from batchops_core.accounts import UserInfo
from batchops_core.enums import Role, Severity, Stage
from batchops_core.errors import PermissionDenied, ValidationFailed
from batchops_core.incidents import FailureInfo, record_failure
from batchops_core.infra.db import Database
from batchops_core.models import Incident, KnownError
from batchops_core.services.known_errors import (
    create_known_error,
    delete_known_error,
    get_known_error,
    list_known_errors,
    set_known_error_active,
    try_pattern,
    update_known_error,
)

Users = dict[Role, UserInfo]


async def _incident(db: Database, source: str, code: str, message: str, stage: Stage) -> int:
    async with db.unit() as uow:
        recorded = await record_failure(
            uow, source=source, failure=FailureInfo(code=code, message=message, stage=stage)
        )
    return recorded.incident_id


async def test_add_edit_disable_delete(db: Database, users: Users) -> None:
    admin = users[Role.ADMIN].actor
    async with db.unit() as uow:
        made = await create_known_error(
            uow,
            actor=admin,
            name="Fee amounts with currency",
            pattern=r"^TYPE_MISMATCH: .*amount",
            stage="validate",
            severity="low",
            fix="Export amounts as plain numbers.",
        )
    assert made.stage is Stage.VALIDATE and made.severity is Severity.LOW and made.active
    async with db.unit() as uow:
        edited = await update_known_error(
            uow, actor=admin, ref="fee amounts with currency", severity="high", stage="any"
        )
        disabled = await set_known_error_active(uow, actor=admin, ref=made.id, active=False)
    assert edited.severity is Severity.HIGH and edited.stage is None
    assert disabled.active is False
    async with db.unit() as uow:
        active = await list_known_errors(uow, actor=users[Role.USER].actor, include_inactive=False)
        assert made.id not in {k.id for k in active}
        await delete_known_error(uow, actor=admin, ref=made.id)
    async with db.unit() as uow:
        assert await uow.get(KnownError, made.id) is None


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"pattern": r"^(a+)\1$"}, r"backreference \(\\1\)"),
        ({"pattern": r"(?<=x)y"}, "lookbehind"),
        ({"pattern": "("}, "not a regex"),
        ({"pattern": "  "}, "pattern is empty"),
        ({"stage": "parse"}, "not one of: standardize"),
        ({"remediation": "reboot"}, "not one of: none"),
        ({"remediation_args": "[1]"}, "JSON object"),
        ({"name": "Database busy"}, "already exists"),
    ],
)
async def test_bad_input_is_refused(
    db: Database, users: Users, changes: dict[str, str], needle: str
) -> None:
    async with db.unit() as uow:
        with pytest.raises(ValidationFailed, match=needle):
            await update_known_error(uow, actor=users[Role.ADMIN].actor, ref=1, **changes)
    async with db.unit() as uow:
        first = await get_known_error(uow, actor=users[Role.ADMIN].actor, ref=1)
    assert first.pattern == r"^CSV_(DELIMITER|SINGLE_COLUMN)"


async def test_moderators_test_but_do_not_edit(db: Database, users: Users) -> None:
    moderator = users[Role.MODERATOR].actor
    async with db.unit() as uow:
        with pytest.raises(PermissionDenied):
            await create_known_error(uow, actor=moderator, name="x", pattern="x")
        result = await try_pattern(uow, actor=moderator, pattern="^NOTHING")
    assert result.matched == []
    async with db.unit() as uow:
        with pytest.raises(PermissionDenied):
            await try_pattern(uow, actor=users[Role.USER].actor, pattern="x")


async def test_pattern_test_says_which_recent_incidents_match(db: Database, users: Users) -> None:
    score = await _incident(
        db,
        "Exams",
        "MISSING_COLUMN",
        "required column 'score' not found: ...; the file has: student_id, name",
        Stage.VALIDATE,
    )
    missing_id = await _incident(
        db,
        "Fees",
        "MISSING_COLUMN",
        "required column 'student_id' not found; the file has: roll, amount",
        Stage.VALIDATE,
    )
    other = await _incident(db, "Library", "CSV_ENCODING", "bad bytes", Stage.STANDARDIZE)
    moderator = users[Role.MODERATOR].actor
    async with db.unit() as uow:
        seeded = await get_known_error(
            uow, actor=moderator, ref="Student identifier under another name"
        )
        narrow = await try_pattern(uow, actor=moderator, pattern=seeded.pattern)
        broad = await try_pattern(uow, actor=moderator, pattern=r"^MISSING_COLUMN: .*student_id")
        staged = await try_pattern(uow, actor=moderator, pattern=".", stage="standardize")
        tagged = await uow.scalar(select(Incident.known_error_id).where(Incident.id == missing_id))
    assert [h.id for h in narrow.matched] == [missing_id]
    assert {h.id for h in broad.matched} == {score, missing_id}, "the old seed caught both"
    assert [h.id for h in staged.matched] == [other] and narrow.checked == 3
    assert narrow.matched[0].known_error == seeded.name and tagged == seeded.id
