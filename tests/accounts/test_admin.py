"""Admin user management: create with a code, roles, disable, lockout/unlock, forced reset."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from batchops_core import accounts
from batchops_core.accounts import UserInfo
from batchops_core.audit import AuditAction
from batchops_core.codes import reset_password, verify_email
from batchops_core.enums import Role
from batchops_core.errors import (
    AuthenticationFailed,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.infra.mail import MailError
from batchops_core.models import AuditLog, User
from batchops_core.permissions import Actor
from batchops_core.services.users import CodeNotSent, create_account
from tests.conftest import TEST_PASSWORD
from tests.mailserver import MailServer, closed_port, smtp_settings


async def _sign_in(db: Database, settings: Settings, name: str, password: str) -> UserInfo:
    async with db.sessions() as session:
        try:
            return await accounts.authenticate(
                session, username=name, password=password, policy=settings.security
            )
        finally:
            await session.commit()


async def _audit(db: Database, action: str) -> list[AuditLog]:
    async with db.unit() as session:
        return list(await session.scalars(select(AuditLog).where(AuditLog.action == action)))


async def _user(db: Database, name: str) -> User:
    async with db.unit() as session:
        user = await session.scalar(select(User).where(User.username == name))
        assert user is not None
        return user


async def test_create_account_sends_a_verification_code(
    db: Database, mail_settings: Settings, mailserver: MailServer, users: dict[Role, UserInfo]
) -> None:
    admin = users[Role.ADMIN].actor
    made = await create_account(
        db,
        mail_settings,
        actor=admin,
        username="Erin",
        email="erin@school.example",
        role=Role.MODERATOR,
        password=TEST_PASSWORD,
    )
    assert (made.username, made.role, made.email_verified) == ("erin", Role.MODERATOR, False)
    message = mailserver.last(to="erin@school.example")
    await verify_email(db, mail_settings, username="erin", code=message.code)
    assert (await _sign_in(db, mail_settings, "erin", TEST_PASSWORD)).role is Role.MODERATOR
    created = (await _audit(db, AuditAction.USER_CREATE))[-1]
    assert created.actor_name == "admin1" and created.target_name == "erin"


async def test_created_admin_needs_no_code(
    db: Database, mail_settings: Settings, mailserver: MailServer, users: dict[Role, UserInfo]
) -> None:
    made = await create_account(
        db,
        mail_settings,
        actor=users[Role.ADMIN].actor,
        username="root2",
        email="root2@school.example",
        role=Role.ADMIN,
        password=TEST_PASSWORD,
    )
    assert made.email_verified and mailserver.messages == []


async def test_create_account_with_mail_down_keeps_the_account(
    db: Database, db_settings: Settings, users: dict[Role, UserInfo]
) -> None:
    down = smtp_settings(db_settings, closed_port())
    with pytest.raises(CodeNotSent) as failure:
        await create_account(
            db,
            down,
            actor=users[Role.ADMIN].actor,
            username="fay",
            email="fay@school.example",
            role=Role.USER,
            password=TEST_PASSWORD,
        )
    sentence = str(failure.value)
    assert "'fay' was created" in sentence and "cannot reach the mail server" in sentence
    assert "batchops account send-code fay --purpose verify" in sentence
    assert failure.value.user.username == "fay"
    assert (await _user(db, "fay")).email == "fay@school.example"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("email", "not-an-email", "is not a valid email address"),
        ("email", "a b@school.example", "is not a valid email address"),
        ("username", "admin1", "already exists"),
        ("username", "9lives", "is not a valid username"),
        ("password", "short", "at least 10 characters"),
        ("password", "password1234", "most common passwords"),
    ],
)
async def test_bad_input_changes_nothing(
    db: Database,
    mail_settings: Settings,
    mailserver: MailServer,
    users: dict[Role, UserInfo],
    field: str,
    value: str,
    message: str,
) -> None:
    given = {"username": "gus", "email": "gus@school.example", "password": TEST_PASSWORD}
    given[field] = value
    with pytest.raises(ValidationFailed, match=message):
        await create_account(
            db, mail_settings, actor=users[Role.ADMIN].actor, role=Role.USER, **given
        )
    async with db.unit() as session:
        assert len(await accounts.list_users(session, actor=users[Role.ADMIN].actor)) == 3
    assert mailserver.messages == []
    assert len(await _audit(db, AuditAction.USER_CREATE)) == len(users)


@pytest.mark.parametrize("role", [Role.MODERATOR, Role.USER])
async def test_only_admins_manage_users(
    db: Database, mail_settings: Settings, users: dict[Role, UserInfo], role: Role
) -> None:
    actor = users[role].actor
    with pytest.raises(PermissionDenied, match="may not manage users"):
        await create_account(
            db,
            mail_settings,
            actor=actor,
            username="hal",
            email="hal@school.example",
            role=Role.USER,
            password=TEST_PASSWORD,
        )
    async with db.unit() as session:
        with pytest.raises(PermissionDenied):
            await accounts.set_role(session, actor=actor, username="user1", role=Role.ADMIN)
        with pytest.raises(PermissionDenied):
            await accounts.set_active(session, actor=actor, username="admin1", active=False)
        with pytest.raises(PermissionDenied):
            await accounts.unlock_user(session, actor=actor, username="user1")
        with pytest.raises(PermissionDenied):
            await accounts.list_users(session, actor=actor)
    with pytest.raises(PermissionDenied):
        await accounts.force_password_reset(db, mail_settings, actor=actor, username="admin1")
    assert (await _user(db, "user1")).role is Role.USER


async def test_last_admin_cannot_be_demoted_or_disabled(
    db: Database, db_settings: Settings, users: dict[Role, UserInfo]
) -> None:
    admin = users[Role.ADMIN].actor
    async with db.unit() as session:
        with pytest.raises(ValidationFailed, match="last active admin and cannot be demoted"):
            await accounts.set_role(session, actor=admin, username="admin1", role=Role.USER)
        with pytest.raises(ValidationFailed, match="last active admin and cannot be disabled"):
            await accounts.set_active(session, actor=admin, username="admin1", active=False)
    async with db.unit() as session:  # with a second admin, the first may step down
        await accounts.set_role(session, actor=admin, username="moderator1", role=Role.ADMIN)
    async with db.unit() as session:
        await accounts.set_role(session, actor=admin, username="admin1", role=Role.USER)
    async with db.unit() as session:
        moderator = (await accounts.get_user(session, "moderator1")).id
        new_admin = Actor(id=moderator, username="moderator1", role=Role.ADMIN)
        with pytest.raises(ValidationFailed, match="last active admin"):
            await accounts.set_active(session, actor=new_admin, username="moderator1", active=False)
    assert (await _user(db, "admin1")).role is Role.USER
    roles = [row.detail for row in await _audit(db, AuditAction.USER_SET_ROLE)]
    assert roles == ["moderator -> admin", "admin -> user"]


async def test_disable_ends_sessions_and_refuses_sign_in(
    db: Database, db_settings: Settings, users: dict[Role, UserInfo]
) -> None:
    target = users[Role.USER]
    async with db.unit() as session:
        await accounts.set_active(
            session, actor=users[Role.ADMIN].actor, username="user1", active=False
        )
    async with db.unit() as session:
        assert not await accounts.session_is_current(
            session, user_id=target.id, epoch=target.session_epoch
        )
    with pytest.raises(AuthenticationFailed, match="disabled"):
        await _sign_in(db, db_settings, "user1", TEST_PASSWORD)
    async with db.unit() as session:
        await accounts.set_active(
            session, actor=users[Role.ADMIN].actor, username="user1", active=True
        )
    signed = await _sign_in(db, db_settings, "user1", TEST_PASSWORD)
    async with db.unit() as session:
        assert await accounts.session_is_current(
            session, user_id=signed.id, epoch=signed.session_epoch
        )
    assert [r.target_name for r in await _audit(db, AuditAction.USER_DISABLE)] == ["user1"]
    assert len(await _audit(db, AuditAction.USER_ENABLE)) == 1


async def test_lockout_after_failures_and_unlock_by_admin(
    db: Database, db_settings: Settings, users: dict[Role, UserInfo]
) -> None:
    threshold = db_settings.security.lockout_threshold
    for _ in range(threshold):
        with pytest.raises(AuthenticationFailed, match="wrong username or password"):
            await _sign_in(db, db_settings, "user1", "wrong-password-here")
    with pytest.raises(AuthenticationFailed, match="locked"):
        await _sign_in(db, db_settings, "user1", TEST_PASSWORD)
    async with db.unit() as session:
        unlocked = await accounts.unlock_user(
            session, actor=users[Role.ADMIN].actor, username="user1"
        )
    assert unlocked.locked_until is None
    assert (await _sign_in(db, db_settings, "user1", TEST_PASSWORD)).username == "user1"
    failures = await _audit(db, AuditAction.AUTH_FAILURE)
    assert len(failures) == threshold + 1 and "account locked" in failures[threshold - 1].detail
    (unlock,) = await _audit(db, AuditAction.USER_UNLOCK)
    assert unlock.actor_name == "admin1" and unlock.detail.startswith("was locked until")


async def test_sign_in_failures_and_successes_are_audited(
    db: Database,
    db_settings: Settings,
    users: dict[Role, UserInfo],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSH_CONNECTION", "203.0.113.9 52100 10.0.0.2 22")
    with pytest.raises(AuthenticationFailed, match="wrong username or password") as unknown:
        await _sign_in(db, db_settings, "ghost", TEST_PASSWORD)
    with pytest.raises(AuthenticationFailed) as wrong:
        await _sign_in(db, db_settings, "user1", "not-the-password")
    assert str(unknown.value) == str(wrong.value)
    await _sign_in(db, db_settings, "user1", TEST_PASSWORD)
    failures = await _audit(db, AuditAction.AUTH_FAILURE)
    assert [f.target_name for f in failures] == ["ghost", "user1"]
    (success,) = await _audit(db, AuditAction.AUTH_SUCCESS)
    assert success.client_addr == "203.0.113.9" and success.actor_name == "user1"


async def test_forced_password_reset(
    db: Database, mail_settings: Settings, mailserver: MailServer, users: dict[Role, UserInfo]
) -> None:
    before = users[Role.USER]
    await accounts.force_password_reset(
        db, mail_settings, actor=users[Role.ADMIN].actor, username="user1"
    )
    message = mailserver.last(to="user1@school.example")
    assert "An administrator asked you" in message.text
    async with db.unit() as session:
        assert not await accounts.session_is_current(
            session, user_id=before.id, epoch=before.session_epoch
        )
    with pytest.raises(AuthenticationFailed, match="an admin asked for a new password"):
        await _sign_in(db, mail_settings, "user1", TEST_PASSWORD)
    await reset_password(
        db, mail_settings, username="user1", code=message.code, new_password="fresh-start-2026"
    )
    assert (await _sign_in(db, mail_settings, "user1", "fresh-start-2026")).username == "user1"
    (forced,) = await _audit(db, AuditAction.USER_FORCE_RESET)
    assert forced.actor_name == "admin1" and forced.target_name == "user1"


async def test_forced_reset_with_mail_down_still_requires_a_new_password(
    db: Database, db_settings: Settings, users: dict[Role, UserInfo]
) -> None:
    down = smtp_settings(db_settings, closed_port())
    with pytest.raises(MailError, match="'user1' must now choose a new password"):
        await accounts.force_password_reset(
            db, down, actor=users[Role.ADMIN].actor, username="user1"
        )
    assert (await _user(db, "user1")).must_reset_password


async def test_role_change_ends_sessions(
    db: Database, db_settings: Settings, users: dict[Role, UserInfo]
) -> None:
    target = users[Role.USER]
    async with db.unit() as session:
        changed = await accounts.set_role(
            session, actor=users[Role.ADMIN].actor, username="user1", role=Role.MODERATOR
        )
        assert not await accounts.session_is_current(
            session, user_id=target.id, epoch=target.session_epoch
        )
    assert changed.role is Role.MODERATOR


async def test_unknown_user_in_admin_actions(
    db: Database, db_settings: Settings, users: dict[Role, UserInfo]
) -> None:
    async with db.unit() as session:
        with pytest.raises(NotFound, match="there is no user named 'nobody'"):
            await accounts.set_role(
                session, actor=users[Role.ADMIN].actor, username="nobody", role=Role.USER
            )


async def test_change_own_password(
    db: Database, db_settings: Settings, users: dict[Role, UserInfo]
) -> None:
    me = users[Role.USER]
    with pytest.raises(AuthenticationFailed, match="the current password is wrong"):
        await accounts.change_password(
            db, db_settings, actor=me.actor, current_password="nope", new_password="x" * 12
        )
    assert (await _user(db, "user1")).failed_logins == 1  # counted, though the call raised
    for new, why in [
        ("short", "at least 10"),
        ("letmein123", "most common"),
        (TEST_PASSWORD, "differ"),
    ]:
        with pytest.raises(ValidationFailed, match=why):
            await accounts.change_password(
                db, db_settings, actor=me.actor, current_password=TEST_PASSWORD, new_password=new
            )
    changed = await accounts.change_password(
        db,
        db_settings,
        actor=me.actor,
        current_password=TEST_PASSWORD,
        new_password="quiet-meadow-77",
    )
    assert changed.session_epoch == me.session_epoch + 1
    assert (await _sign_in(db, db_settings, "user1", "quiet-meadow-77")).username == "user1"
    (row,) = await _audit(db, AuditAction.PASSWORD_CHANGE)
    assert row.actor_name == "user1" and row.target_name == "user1"


async def test_forced_reset_of_a_disabled_account_is_refused(
    db: Database, mail_settings: Settings, mailserver: MailServer, users: dict[Role, UserInfo]
) -> None:
    admin = users[Role.ADMIN].actor
    async with db.unit() as session:
        await accounts.set_active(session, actor=admin, username="user1", active=False)
    with pytest.raises(ValidationFailed, match="'user1' is disabled: enable it first"):
        await accounts.force_password_reset(db, mail_settings, actor=admin, username="user1")
    assert not (await _user(db, "user1")).must_reset_password and mailserver.messages == []
