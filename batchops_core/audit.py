"""The audit trail: one AuditLog row per account change, sign-in and admin action.

Rows are written in the caller's transaction so the change and its record commit together. Other
areas (incidents, schedules, uploads) may record their own action names; the account actions are
the `AuditAction` values below.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core.models import AuditLog
from batchops_core.permissions import Action, Actor, require
from batchops_core.services.pagination import Page, page_window

MAX_PAGE = 1000


class AuditAction(StrEnum):
    """Account and sign-in actions; `action` filters match a value or a prefix like `user`."""

    AUTH_SUCCESS = "auth.success"
    AUTH_FAILURE = "auth.failure"
    USER_CREATE = "user.create"
    USER_SET_ROLE = "user.set_role"
    USER_ENABLE = "user.enable"
    USER_DISABLE = "user.disable"
    USER_UNLOCK = "user.unlock"
    USER_FORCE_RESET = "user.force_reset"
    CODE_SENT = "code.sent"
    CODE_NOT_SENT = "code.not_sent"
    CODE_UNKNOWN_ACCOUNT = "code.unknown_account"
    CODE_REJECTED = "code.rejected"
    EMAIL_VERIFIED = "email.verified"
    PASSWORD_RESET = "password.reset"
    PASSWORD_CHANGE = "password.change"


@dataclass(frozen=True)
class AuditRow:
    id: int
    created_at: datetime
    actor_id: int | None
    actor_name: str
    action: str
    target_type: str
    target_id: int | None
    target_name: str
    detail: str
    client_addr: str | None

    @classmethod
    def of(cls, row: AuditLog) -> AuditRow:
        return cls(
            id=row.id,
            created_at=row.created_at,
            actor_id=row.actor_id,
            actor_name=row.actor_name,
            action=row.action,
            target_type=row.target_type,
            target_id=row.target_id,
            target_name=row.target_name,
            detail=row.detail,
            client_addr=row.client_addr,
        )


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
        actor_name=actor.username[:64] if actor else "anonymous",
        action=str(action),
        target_type=target_type,
        target_id=target_id,
        target_name=target_name[:255],
        detail=detail,
        client_addr=client_address(),
    )
    session.add(row)
    return row


def _filtered(
    query: Select,
    action: str | None,
    actor_name: str | None,
    target: str | None,
    since: datetime | None,
) -> Select:
    if action:
        query = query.where(
            or_(
                AuditLog.action == action, AuditLog.action.startswith(f"{action}.", autoescape=True)
            )
        )
    if actor_name:
        query = query.where(func.lower(AuditLog.actor_name) == actor_name.strip().lower())
    if target:
        query = query.where(func.lower(AuditLog.target_name) == target.strip().lower())
    if since is not None:
        query = query.where(AuditLog.created_at >= since)
    return query


async def list_audit(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str | None = None,
    actor_name: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[AuditRow]:
    """Newest first. `action` matches exactly or as a prefix (`user` → `user.create`, …)."""
    require(actor, Action.VIEW_AUDIT)
    offset, limit = page_window(offset, limit, MAX_PAGE)
    total = await session.scalar(
        _filtered(select(func.count(AuditLog.id)), action, actor_name, target, since)
    )
    rows = await session.scalars(
        _filtered(select(AuditLog), action, actor_name, target, since)
        .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return Page(items=[AuditRow.of(r) for r in rows], total=total or 0, offset=offset, limit=limit)
