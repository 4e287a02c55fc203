"""The audit trail: one AuditLog row per account change, sign-in and admin action.

Rows are written in the caller's transaction so the change and its record commit together.
"""

from __future__ import annotations

import os

from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core.models import AuditLog
from batchops_core.permissions import Actor


def client_address() -> str | None:
    """The SSH client's address when the operator came in over SSH."""
    connection = os.environ.get("SSH_CONNECTION", "").split()
    return connection[0] if connection else None


def record(
    session: AsyncSession,
    *,
    actor: Actor | None,
    action: str,
    target_type: str = "",
    target_id: int | None = None,
    target_name: str = "",
    detail: str = "",
) -> AuditLog:
    row = AuditLog(
        actor_id=actor.id if actor else None,
        actor_name=actor.username if actor else "anonymous",
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_name=target_name,
        detail=detail,
        client_addr=client_address(),
    )
    session.add(row)
    return row
