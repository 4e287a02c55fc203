"""A refused role action leaves an audit row, written by the unit of work it escapes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from batchops_core import accounts
from batchops_core.enums import Role
from batchops_core.errors import PermissionDenied
from batchops_core.infra.db import Database
from batchops_core.models import AuditLog


async def test_refused_action_is_audited(db: Database, users) -> None:
    user = users[Role.USER].actor
    with pytest.raises(PermissionDenied, match="may not manage users"):
        async with db.unit() as session:
            await accounts.list_users(session, actor=user)
    async with db.unit() as session:
        await accounts.list_users(session, actor=users[Role.ADMIN].actor)  # allowed: no row
        rows = list(
            await session.scalars(select(AuditLog).where(AuditLog.action == "permission.refused"))
        )
    assert [(r.actor_name, r.actor_id, r.detail) for r in rows] == [
        ("user1", user.id, "may not manage users")
    ]
