"""Reading the audit trail: filters, paging, newest first, admins only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from batchops_core import accounts, audit
from batchops_core.accounts import UserInfo
from batchops_core.audit import AuditAction, list_audit
from batchops_core.enums import Role
from batchops_core.errors import PermissionDenied
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import AuditLog


async def test_filters_and_pages(
    db: Database, db_settings: Settings, users: dict[Role, UserInfo]
) -> None:
    admin = users[Role.ADMIN].actor
    async with db.unit() as session:
        await accounts.set_role(session, actor=admin, username="user1", role=Role.MODERATOR)
        await accounts.set_active(session, actor=admin, username="user1", active=False)
        audit.record(session, actor=None, action="upload.queued", target_name="fees.csv")
    async with db.unit() as session:  # an old row, outside a `since` window
        await session.execute(
            update(AuditLog)
            .where(AuditLog.action == "upload.queued")
            .values(created_at=utcnow() - timedelta(days=3))
        )
    async with db.unit() as session:
        everything = await list_audit(session, actor=admin)
        by_prefix = await list_audit(session, actor=admin, action="user")
        exact = await list_audit(session, actor=admin, action=AuditAction.USER_DISABLE)
        by_actor = await list_audit(session, actor=admin, actor_name="ADMIN1")
        by_target = await list_audit(session, actor=admin, target="user1")
        recent = await list_audit(session, actor=admin, since=utcnow() - timedelta(days=1))
        page = await list_audit(session, actor=admin, action="user", offset=1, limit=2)
    # 3 creations by the fixture, role, disable, the upload row.
    assert everything.total == 6 and everything.items[-1].action == "upload.queued"
    assert [r.action for r in by_prefix.items[:2]] == ["user.disable", "user.set_role"]
    assert by_prefix.total == 5
    assert [r.target_name for r in exact.items] == ["user1"]
    assert {r.action for r in by_actor.items} == {"user.set_role", "user.disable"}
    assert by_target.total == 3  # created, role, disabled
    assert recent.total == 5
    assert (page.offset, page.limit, len(page.items), page.has_next) == (1, 2, 2, True)
    assert page.items[0].action == "user.set_role"


@pytest.mark.parametrize("role", [Role.MODERATOR, Role.USER])
async def test_only_admins_read_the_audit_log(
    db: Database, users: dict[Role, UserInfo], role: Role
) -> None:
    async with db.unit() as session:
        with pytest.raises(PermissionDenied, match="may not read the audit log"):
            await list_audit(session, actor=users[role].actor)


def test_client_address_from_ssh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSH_CONNECTION", "198.51.100.4 50000 10.0.0.1 22")
    assert audit.client_address() == "198.51.100.4"
    monkeypatch.delenv("SSH_CONNECTION")
    assert audit.client_address() is None
