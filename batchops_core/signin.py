"""The signed-in session a terminal holds: who, with which session epoch, and the idle lock.

The TUI keeps one `SignedInSession` for its whole life. The epoch is the account's
`session_epoch` at sign-in: an admin disabling the account or a password reset bumps it, and the
next `still_current` check then ends the session. Idle locking is pure arithmetic on the last
activity time so that it is tested without a screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from batchops_core import accounts
from batchops_core.accounts import UserInfo
from batchops_core.errors import AuthenticationFailed
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.permissions import Actor


@dataclass
class SignedInSession:
    """One person's session in one terminal."""

    user: UserInfo
    epoch: int
    idle_lock_after: timedelta
    last_activity: datetime = field(default_factory=utcnow)
    locked: bool = False

    @property
    def actor(self) -> Actor:
        return self.user.actor

    def touch(self, now: datetime | None = None) -> None:
        """Record activity (a key press or a click)."""
        if not self.locked:
            self.last_activity = now or utcnow()

    def idle_for(self, now: datetime | None = None) -> timedelta:
        return (now or utcnow()) - self.last_activity

    def should_lock(self, now: datetime | None = None) -> bool:
        """True once the session has been idle for the configured time (0 disables locking)."""
        if self.locked or self.idle_lock_after <= timedelta(0):
            return False
        return self.idle_for(now) >= self.idle_lock_after

    def lock(self) -> None:
        self.locked = True

    def unlock(self, now: datetime | None = None) -> None:
        self.locked = False
        self.last_activity = now or utcnow()


async def sign_in(
    db: Database, settings: Settings, *, username: str, password: str
) -> SignedInSession:
    """Authenticate and open a session; failures are committed (audit row, lockout count)."""
    async with db.sessions() as session:
        try:
            user = await accounts.authenticate(
                session, username=username, password=password, policy=settings.security
            )
        except AuthenticationFailed:
            await session.commit()
            raise
        await session.commit()
    return SignedInSession(
        user=user,
        epoch=user.session_epoch,
        idle_lock_after=timedelta(minutes=settings.security.idle_lock_minutes),
    )


async def unlock(db: Database, settings: Settings, current: SignedInSession, password: str) -> None:
    """Re-check the password of the session's own user and that the session is still valid."""
    fresh = await sign_in(db, settings, username=current.user.username, password=password)
    if fresh.epoch != current.epoch:
        raise AuthenticationFailed(
            "this session was ended by a password change or an admin; sign in again."
        )
    current.user = fresh.user
    current.unlock()


async def still_current(db: Database, current: SignedInSession) -> bool:
    """False when the account was disabled or its sessions were ended since sign-in."""
    check = getattr(accounts, "session_is_current", None)
    async with db.unit() as session:
        if check is not None:
            return bool(await check(session, user_id=current.user.id, epoch=current.epoch))
        from sqlalchemy import select

        from batchops_core.models import User

        row = (
            await session.execute(
                select(User.active, User.session_epoch).where(User.id == current.user.id)
            )
        ).first()
    return row is not None and bool(row.active) and row.session_epoch == current.epoch
