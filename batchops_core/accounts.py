"""Users, roles, argon2 password hashes, sign-in with lockout.

Non-admin accounts must have a verified email before they can sign in; admins are provisioned by
an admin (or `batchops user add`) and trusted. Every change writes an audit row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core import audit
from batchops_core.clock import utcnow
from batchops_core.config import SecuritySettings
from batchops_core.enums import Role
from batchops_core.errors import AuthenticationFailed, NotFound, ValidationFailed
from batchops_core.models import User
from batchops_core.permissions import Action, Actor, require

_hasher = PasswordHasher()
USERNAME_RE = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class UserInfo:
    """What screens and scripts see of an account (never the hash)."""

    id: int
    username: str
    email: str
    role: Role
    email_verified: bool
    active: bool
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime
    session_epoch: int = 0

    @property
    def actor(self) -> Actor:
        return Actor(id=self.id, username=self.username, role=self.role)

    @classmethod
    def of(cls, user: User) -> UserInfo:
        return cls(
            id=user.id,
            username=user.username,
            email=user.email,
            role=user.role,
            email_verified=user.email_verified,
            active=user.active,
            locked_until=user.locked_until,
            last_login_at=user.last_login_at,
            created_at=user.created_at,
            session_epoch=user.session_epoch,
        )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise ValidationFailed(f"'{value}' is not a role; choose one of {choices}.") from None


def check_username(username: str) -> str:
    name = username.strip().lower()
    if not USERNAME_RE.match(name):
        raise ValidationFailed(
            f"'{username}' is not a valid username: use 2-64 lowercase letters, digits, '.', '_' or "
            "'-', starting with a letter."
        )
    return name


def check_email(email: str) -> str:
    address = email.strip()
    if not EMAIL_RE.match(address) or len(address) > 254:
        raise ValidationFailed(f"'{email}' is not a valid email address.")
    return address


def check_password(password: str, username: str, policy: SecuritySettings) -> None:
    if len(password) < policy.password_min_length:
        raise ValidationFailed(
            f"the password must be at least {policy.password_min_length} characters long."
        )
    if password.strip().lower() == username.lower():
        raise ValidationFailed("the password must not be the username.")


async def get_user(session: AsyncSession, username: str) -> User:
    user = await session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NotFound(f"there is no user named '{username}'.")
    return user


async def create_user(
    session: AsyncSession,
    *,
    actor: Actor,
    username: str,
    email: str,
    role: Role,
    password: str,
    policy: SecuritySettings,
    verified: bool | None = None,
    department_id: int | None = None,
) -> UserInfo:
    """Create an account; admins are verified by default, other roles must verify their email."""
    require(actor, Action.MANAGE_USERS)
    name = check_username(username)
    address = check_email(email)
    check_password(password, name, policy)
    if await session.scalar(select(func.count()).where(User.username == name)):
        raise ValidationFailed(f"a user named '{name}' already exists.")
    user = User(
        username=name,
        email=address,
        role=role,
        password_hash=hash_password(password),
        email_verified=(role is Role.ADMIN) if verified is None else verified,
        department_id=department_id,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        raise ValidationFailed(f"a user named '{name}' already exists.") from None
    audit.record(
        session,
        actor=actor,
        action="user.create",
        target_type="user",
        target_id=user.id,
        target_name=name,
        detail=f"role={role.value} email={address}",
    )
    return UserInfo.of(user)


async def authenticate(
    session: AsyncSession, *, username: str, password: str, policy: SecuritySettings
) -> UserInfo:
    """Check the credentials and the account's state; count failures toward a lockout.

    The caller commits even when this raises, so failures and lockouts are recorded.
    """
    now = utcnow()
    user = await session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        audit.record(
            session, actor=None, action="auth.failure", target_name=username, detail="unknown user"
        )
        raise AuthenticationFailed("wrong username or password.")
    actor = Actor(id=user.id, username=user.username, role=user.role)
    if user.locked_until is not None and user.locked_until > now:
        audit.record(
            session,
            actor=actor,
            action="auth.failure",
            target_type="user",
            target_id=user.id,
            target_name=user.username,
            detail="locked",
        )
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
        raise AuthenticationFailed(
            f"this account is locked after repeated failed sign-ins; try again in {minutes} minute(s) "
            "or ask an admin to unlock it."
        )
    if not verify_password(user.password_hash, password):
        user.failed_logins += 1
        detail = f"wrong password ({user.failed_logins} in a row)"
        if user.failed_logins >= policy.lockout_threshold:
            user.locked_until = now + timedelta(minutes=policy.lockout_minutes)
            user.failed_logins = 0
            detail += "; account locked"
        audit.record(
            session,
            actor=actor,
            action="auth.failure",
            target_type="user",
            target_id=user.id,
            target_name=user.username,
            detail=detail,
        )
        raise AuthenticationFailed("wrong username or password.")
    if not user.active:
        raise AuthenticationFailed("this account is disabled; ask an admin.")
    if not user.email_verified and user.role is not Role.ADMIN:
        raise AuthenticationFailed(
            "this account's email is not verified yet: choose 'Verify email' to get a code."
        )
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit.record(
        session,
        actor=actor,
        action="auth.success",
        target_type="user",
        target_id=user.id,
        target_name=user.username,
    )
    return UserInfo.of(user)


async def list_users(session: AsyncSession, *, actor: Actor) -> list[UserInfo]:
    require(actor, Action.MANAGE_USERS)
    users = await session.scalars(select(User).order_by(User.username))
    return [UserInfo.of(u) for u in users]


async def _count_active_admins(session: AsyncSession) -> int:
    return (
        await session.scalar(
            select(func.count()).where(User.role == Role.ADMIN, User.active.is_(True))
        )
        or 0
    )


async def set_role(session: AsyncSession, *, actor: Actor, username: str, role: Role) -> UserInfo:
    require(actor, Action.MANAGE_USERS)
    user = await get_user(session, username)
    if user.role is Role.ADMIN and role is not Role.ADMIN and user.active:
        if await _count_active_admins(session) <= 1:
            raise ValidationFailed(
                f"'{user.username}' is the last active admin and cannot be demoted."
            )
    before = user.role
    user.role = role
    audit.record(
        session,
        actor=actor,
        action="user.set_role",
        target_type="user",
        target_id=user.id,
        target_name=user.username,
        detail=f"{before.value} -> {role.value}",
    )
    return UserInfo.of(user)


async def set_active(
    session: AsyncSession, *, actor: Actor, username: str, active: bool
) -> UserInfo:
    """Disable (ending all sessions) or re-enable an account; the last admin stays active."""
    require(actor, Action.MANAGE_USERS)
    user = await get_user(session, username)
    if not active and user.role is Role.ADMIN and user.active:
        if await _count_active_admins(session) <= 1:
            raise ValidationFailed(
                f"'{user.username}' is the last active admin and cannot be disabled."
            )
    user.active = active
    if not active:
        user.session_epoch += 1
    audit.record(
        session,
        actor=actor,
        action="user.enable" if active else "user.disable",
        target_type="user",
        target_id=user.id,
        target_name=user.username,
    )
    return UserInfo.of(user)
