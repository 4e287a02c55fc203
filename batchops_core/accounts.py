"""Users, roles, sign-in with lockout, and the admin actions on accounts.

Non-admin accounts must have a verified email before they can sign in; admins are provisioned by
an admin (or `batchops user add`) and trusted. Every change and every sign-in writes an audit row.
Changes that must end open sessions (disable, role change, password reset) bump `session_epoch`;
the TUI checks `session_is_current` and signs out a session whose epoch is stale.
Password hashing and policy live in `passwords`, one-time codes in `codes`.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core import audit, codes
from batchops_core.audit import AuditAction
from batchops_core.enums import CodePurpose, Role
from batchops_core.errors import AuthenticationFailed, NotFound, ValidationFailed
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import SecuritySettings, Settings
from batchops_core.infra.db import Database
from batchops_core.infra.mail import MailError
from batchops_core.models import AuditLog, User
from batchops_core.passwords import check_password, hash_password, verify_password
from batchops_core.permissions import Action, Actor, require

__all__ = [
    "UserInfo",
    "authenticate",
    "change_password",
    "check_email",
    "check_password",
    "check_username",
    "create_user",
    "force_password_reset",
    "get_user",
    "hash_password",
    "list_users",
    "parse_role",
    "session_is_current",
    "set_active",
    "set_role",
    "unlock_user",
    "user_exists",
    "verify_password",
]


@cache
def _dummy_hash() -> str:
    """A hash to verify unknown names against, so they cost as long as known ones. Made on first
    use, not at import: argon2 hashing on import delayed every `batchops` start by ~50 ms."""
    return hash_password("not a real password, only here to make unknown names cost the same")


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
            f"'{username}' is not a valid username: use 2-64 lowercase letters, digits, '.', '_' "
            "or '-', starting with a letter."
        )
    return name


def check_email(email: str) -> str:
    address = email.strip()
    if not EMAIL_RE.match(address) or len(address) > 254:
        raise ValidationFailed(f"'{email}' is not a valid email address.")
    return address


async def get_user(session: AsyncSession, username: str) -> User:
    user = await session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NotFound(f"there is no user named '{username}'.")
    return user


async def user_exists(session: AsyncSession, username: str) -> bool:
    name = username.strip().lower()
    return bool(await session.scalar(select(func.count()).where(User.username == name)))


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
        action=AuditAction.USER_CREATE,
        target_type="user",
        target_id=user.id,
        target_name=name,
        detail=f"role={role.value} email={address} verified={user.email_verified}",
    )
    return UserInfo.of(user)


WRONG_CREDENTIALS = "wrong username or password."


def _locked_sentence(until: datetime, now: datetime) -> str:
    minutes = max(1, int((until - now).total_seconds() // 60) + 1)
    return (
        f"this account is locked after repeated failed sign-ins; try again in {minutes} "
        "minute(s) or ask an admin to unlock it."
    )


async def _unknown_name_locked_until(
    session: AsyncSession, name: str, policy: SecuritySettings, now: datetime
) -> datetime | None:
    """The lockout an unknown name would be under: counted from its audited failures, so that
    a name that does not exist locks exactly like one that does."""
    window = timedelta(minutes=policy.lockout_minutes)
    stamps = list(
        await session.scalars(
            select(AuditLog.created_at)
            .where(
                AuditLog.action == AuditAction.AUTH_FAILURE.value,
                AuditLog.target_name == name,
                AuditLog.actor_id.is_(None),
                AuditLog.detail == "unknown user",
                AuditLog.created_at >= now - window,
            )
            .order_by(AuditLog.created_at)
            .limit(policy.lockout_threshold)
        )
    )
    if len(stamps) < policy.lockout_threshold:
        return None
    until = stamps[-1] + window
    return until if until > now else None


async def authenticate(
    session: AsyncSession, *, username: str, password: str, policy: SecuritySettings
) -> UserInfo:
    """Check the credentials and the account's state; count failures toward a lockout.

    The caller commits even when this raises, so failures and lockouts are recorded. No answer
    tells whether the name exists: the password is checked first (against a dummy hash for an
    unknown name), an unknown name locks after as many failures as a real one, a locked account
    says "locked" whatever the password (so the lockout is no oracle either), and every refusal
    comes after at least `answer_seconds`. The account's state (disabled, unverified, reset
    required) is only revealed after a correct password.
    """
    start = time.monotonic()
    try:
        return await _authenticate(session, username=username, password=password, policy=policy)
    except AuthenticationFailed:
        left = policy.answer_seconds - (time.monotonic() - start)
        if left > 0:
            await asyncio.sleep(left)
        raise


async def _authenticate(
    session: AsyncSession, *, username: str, password: str, policy: SecuritySettings
) -> UserInfo:
    now = utcnow()
    name = username.strip().lower()
    user = await session.scalar(select(User).where(User.username == name))
    if user is None:
        verify_password(_dummy_hash(), password)
        locked_until = await _unknown_name_locked_until(session, name[:64], policy, now)
        audit.record(
            session,
            actor=None,
            action=AuditAction.AUTH_FAILURE,
            target_name=name[:64],
            detail="unknown user; locked" if locked_until else "unknown user",
        )
        if locked_until is not None:
            raise AuthenticationFailed(_locked_sentence(locked_until, now))
        raise AuthenticationFailed(WRONG_CREDENTIALS)
    actor = Actor(id=user.id, username=user.username, role=user.role)

    def refuse(detail: str, sentence: str) -> AuthenticationFailed:
        audit.record(
            session,
            actor=actor,
            action=AuditAction.AUTH_FAILURE,
            target_type="user",
            target_id=user.id,
            target_name=user.username,
            detail=detail,
        )
        return AuthenticationFailed(sentence)

    right = verify_password(user.password_hash, password)
    if user.locked_until is not None and user.locked_until > now:
        raise refuse("locked", _locked_sentence(user.locked_until, now))
    if not right:
        user.failed_logins += 1
        detail = f"wrong password ({user.failed_logins} in a row)"
        if user.failed_logins >= policy.lockout_threshold:
            user.locked_until = now + timedelta(minutes=policy.lockout_minutes)
            user.failed_logins = 0
            detail += "; account locked"
        raise refuse(detail, WRONG_CREDENTIALS)
    if not user.active:
        raise refuse("disabled", "this account is disabled; ask an admin.")
    if not user.email_verified and user.role is not Role.ADMIN:
        raise refuse(
            "email not verified",
            "this account's email is not verified yet: choose 'Verify email' to get a code.",
        )
    if user.must_reset_password:
        raise refuse(
            "password reset required",
            "an admin asked for a new password on this account: choose 'Forgot password' to get "
            "a reset code.",
        )
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit.record(
        session,
        actor=actor,
        action=AuditAction.AUTH_SUCCESS,
        target_type="user",
        target_id=user.id,
        target_name=user.username,
    )
    return UserInfo.of(user)


async def change_password(
    db: Database, settings: Settings, *, actor: Actor, current_password: str, new_password: str
) -> UserInfo:
    """A signed-in user changes their own password; every other session of the account ends.

    Returns the account with its new `session_epoch`, which the caller's session adopts. A wrong
    current password counts toward the lockout like a failed sign-in (and is committed).
    """
    if actor.id is None:
        raise ValidationFailed("only a signed-in user can change their own password.")
    refused: AuthenticationFailed | None = None
    async with db.unit() as session:
        user = await session.get(User, actor.id)
        if user is None or not user.active:
            raise AuthenticationFailed("this account no longer exists or is disabled.")
        if not verify_password(user.password_hash, current_password):
            user.failed_logins += 1
            detail = f"wrong current password on password change ({user.failed_logins} in a row)"
            if user.failed_logins >= settings.security.lockout_threshold:
                user.locked_until = utcnow() + timedelta(minutes=settings.security.lockout_minutes)
                user.failed_logins = 0
                user.session_epoch += 1
                detail += "; account locked, sessions ended"
            _record_on_user(session, actor, AuditAction.AUTH_FAILURE, user, detail)
            refused = AuthenticationFailed("the current password is wrong.")
        else:
            check_password(new_password, user.username, settings.security)
            if verify_password(user.password_hash, new_password):
                raise ValidationFailed("the new password must differ from the current one.")
            user.password_hash = hash_password(new_password)
            user.must_reset_password = False
            user.failed_logins = 0
            user.session_epoch += 1
            _record_on_user(
                session, actor, AuditAction.PASSWORD_CHANGE, user, "other sessions ended"
            )
            changed = UserInfo.of(user)
    if refused is not None:  # raised after the commit so the failure counts
        raise refused
    return changed


async def session_is_current(session: AsyncSession, *, user_id: int, epoch: int) -> bool:
    """Whether a session opened at `epoch` may go on: the account is active and nothing ended it."""
    row = (
        await session.execute(select(User.active, User.session_epoch).where(User.id == user_id))
    ).one_or_none()
    return row is not None and bool(row.active) and row.session_epoch == epoch


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


def _record_on_user(
    session: AsyncSession, actor: Actor, action: AuditAction, user: User, detail: str = ""
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        target_type="user",
        target_id=user.id,
        target_name=user.username,
        detail=detail,
    )


async def set_role(session: AsyncSession, *, actor: Actor, username: str, role: Role) -> UserInfo:
    """Change the role; open sessions of the account end so they pick up the new rights."""
    require(actor, Action.MANAGE_USERS)
    user = await get_user(session, username)
    if user.role is role:
        return UserInfo.of(user)
    if user.role is Role.ADMIN and user.active and await _count_active_admins(session) <= 1:
        raise ValidationFailed(f"'{user.username}' is the last active admin and cannot be demoted.")
    before = user.role
    user.role = role
    user.session_epoch += 1
    _record_on_user(session, actor, AuditAction.USER_SET_ROLE, user, f"{before} -> {role}")
    return UserInfo.of(user)


async def set_active(
    session: AsyncSession, *, actor: Actor, username: str, active: bool
) -> UserInfo:
    """Disable (ending all sessions) or re-enable an account; the last admin stays active."""
    require(actor, Action.MANAGE_USERS)
    user = await get_user(session, username)
    if user.active is active:
        return UserInfo.of(user)
    if not active and user.role is Role.ADMIN and await _count_active_admins(session) <= 1:
        raise ValidationFailed(
            f"'{user.username}' is the last active admin and cannot be disabled."
        )
    user.active = active
    if not active:
        user.session_epoch += 1
    action = AuditAction.USER_ENABLE if active else AuditAction.USER_DISABLE
    _record_on_user(session, actor, action, user)
    return UserInfo.of(user)


async def unlock_user(session: AsyncSession, *, actor: Actor, username: str) -> UserInfo:
    """Lift a sign-in lockout and forget the failed attempts."""
    require(actor, Action.MANAGE_USERS)
    user = await get_user(session, username)
    was = user.locked_until
    user.locked_until = None
    user.failed_logins = 0
    detail = f"was locked until {was.isoformat(timespec='seconds')}" if was else "was not locked"
    _record_on_user(session, actor, AuditAction.USER_UNLOCK, user, detail)
    return UserInfo.of(user)


async def force_password_reset(
    db: Database, settings: Settings, *, actor: Actor, username: str
) -> None:
    """Require a new password: sign-in is refused, sessions end, and a reset code is emailed.

    The account change is committed before the mail is sent; a delivery failure raises MailError
    saying the reset is still required and how to send the code later.
    """
    require(actor, Action.MANAGE_USERS)
    async with db.unit() as session:
        user = await get_user(session, username)
        if not user.active:
            raise ValidationFailed(
                f"'{user.username}' is disabled: enable it first, then require a new password."
            )
        user.must_reset_password = True
        user.session_epoch += 1
        _record_on_user(session, actor, AuditAction.USER_FORCE_RESET, user, "sessions ended")
        user_id, name = user.id, user.username
    try:
        await codes.issue_code(
            db, settings, user_id=user_id, purpose=CodePurpose.RESET, actor=actor, forced=True
        )
    except MailError as exc:
        raise MailError(
            f"'{name}' must now choose a new password, but the reset code could not be sent: "
            f"{str(exc).rstrip('.')}. Once mail works, run `batchops account send-code {name} "
            "--purpose reset`."
        ) from None
