"""Verification and reset codes end to end: real SMTP, code read from the received message."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from batchops_core import accounts
from batchops_core.accounts import UserInfo
from batchops_core.audit import AuditAction
from batchops_core.codes import (
    CodeProblem,
    CodeRejected,
    TooManyCodes,
    request_code,
    reset_password,
    verify_email,
)
from batchops_core.enums import CodePurpose, Role
from batchops_core.errors import AuthenticationFailed, ValidationFailed
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.infra.mail import MailError
from batchops_core.models import AuditLog, EmailVerificationRequest, PasswordResetRequest, User
from batchops_core.permissions import SYSTEM
from tests.conftest import TEST_PASSWORD
from tests.mailserver import MailServer, closed_port, smtp_settings

VERIFY, RESET = CodePurpose.VERIFY, CodePurpose.RESET
NEW_PASSWORD = "plum-orchard-lantern"


async def _unverified(db: Database, settings: Settings, name: str = "dana") -> UserInfo:
    async with db.unit() as session:
        return await accounts.create_user(
            session,
            actor=SYSTEM,
            username=name,
            email=f"{name}@school.example",
            role=Role.USER,
            password=TEST_PASSWORD,
            policy=settings.security,
        )


async def _sign_in(db: Database, settings: Settings, name: str, password: str) -> UserInfo:
    async with db.sessions() as session:
        try:
            return await accounts.authenticate(
                session, username=name, password=password, policy=settings.security
            )
        finally:
            await session.commit()


async def _actions(db: Database) -> list[str]:
    async with db.unit() as session:
        return list(await session.scalars(select(AuditLog.action).order_by(AuditLog.id)))


async def test_verify_email_with_the_mailed_code(
    db: Database, mail_settings: Settings, mailserver: MailServer
) -> None:
    await _unverified(db, mail_settings)
    with pytest.raises(AuthenticationFailed, match="not verified"):
        await _sign_in(db, mail_settings, "dana", TEST_PASSWORD)
    await request_code(db, mail_settings, username_or_email="dana", purpose=VERIFY)
    message = mailserver.last(to="dana@school.example")
    assert message.subject == "BatchOps: your email verification code"
    assert "15 minutes" in message.text and message.code in message.html
    await verify_email(db, mail_settings, username="dana", code=message.code)
    assert (await _sign_in(db, mail_settings, "dana", TEST_PASSWORD)).email_verified
    actions = await _actions(db)
    assert AuditAction.CODE_SENT in actions and AuditAction.EMAIL_VERIFIED in actions
    async with db.unit() as session:
        row = await session.scalar(select(EmailVerificationRequest))
        assert row is not None and row.code_hash != message.code and row.used_at is not None


async def test_request_by_email_address(
    db: Database, mail_settings: Settings, mailserver: MailServer
) -> None:
    await _unverified(db, mail_settings)
    await request_code(db, mail_settings, username_or_email="DANA@School.example", purpose=VERIFY)
    await verify_email(db, mail_settings, username="dana", code=mailserver.last().code)


async def test_unknown_account_gets_the_same_answer(
    db: Database, mail_settings: Settings, mailserver: MailServer
) -> None:
    for who in ("nobody", "nobody@school.example"):
        assert await request_code(db, mail_settings, username_or_email=who, purpose=RESET) is None
    assert mailserver.messages == []
    with pytest.raises(CodeRejected, match="wrong or no longer valid") as unknown:
        await verify_email(db, mail_settings, username="nobody", code="123456")
    await _unverified(db, mail_settings)
    with pytest.raises(CodeRejected, match="wrong or no longer valid") as known:
        await verify_email(db, mail_settings, username="dana", code="123456")
    assert str(unknown.value) == str(known.value)
    assert (await _actions(db)).count(AuditAction.CODE_UNKNOWN_ACCOUNT) == 2


async def test_unknown_account_with_mail_down_fails_like_a_known_one(
    db: Database, db_settings: Settings
) -> None:
    down = smtp_settings(db_settings, closed_port())
    await _unverified(db, down)
    errors = []
    for who in ("dana", "nobody"):
        with pytest.raises(MailError) as failure:
            await request_code(db, down, username_or_email=who, purpose=VERIFY)
        errors.append(str(failure.value))
    assert errors[0] == errors[1] and "cannot reach the mail server" in errors[0]


async def test_verified_account_asking_to_verify_gets_nothing(
    db: Database, mail_settings: Settings, mailserver: MailServer, users: dict[Role, UserInfo]
) -> None:
    await request_code(db, mail_settings, username_or_email="user1", purpose=VERIFY)
    assert mailserver.messages == []


async def test_wrong_code_counts_attempts_then_kills_the_code(
    db: Database, mail_settings: Settings, mailserver: MailServer
) -> None:
    await _unverified(db, mail_settings)
    await request_code(db, mail_settings, username_or_email="dana", purpose=VERIFY)
    good = mailserver.last().code
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    limit = mail_settings.security.code_max_attempts
    for left in range(limit - 1, 0, -1):
        # The count is kept (and audited) but never told: it would reveal the account.
        with pytest.raises(CodeRejected, match="wrong or no longer valid") as wrong_one:
            await verify_email(db, mail_settings, username="dana", code=wrong)
        assert wrong_one.value.attempts_left == left and "attempt" not in str(wrong_one.value)
    with pytest.raises(CodeRejected, match="wrong or no longer valid"):
        await verify_email(db, mail_settings, username="dana", code=wrong)
    # Only someone holding the real code learns why it no longer works.
    with pytest.raises(CodeRejected, match="too many wrong attempts"):
        await verify_email(db, mail_settings, username="dana", code=good)
    async with db.unit() as session:
        user = await session.scalar(select(User).where(User.username == "dana"))
        assert user is not None and not user.email_verified


async def test_reused_code(db: Database, mail_settings: Settings, mailserver: MailServer) -> None:
    await _unverified(db, mail_settings)
    await request_code(db, mail_settings, username_or_email="dana", purpose=VERIFY)
    code = mailserver.last().code
    await verify_email(db, mail_settings, username="dana", code=code)
    with pytest.raises(CodeRejected, match="already been used") as reused:
        await verify_email(db, mail_settings, username="dana", code=code)
    assert reused.value.problem is CodeProblem.USED


async def test_expired_code(db: Database, mail_settings: Settings, mailserver: MailServer) -> None:
    await _unverified(db, mail_settings)
    await request_code(db, mail_settings, username_or_email="dana", purpose=VERIFY)
    async with db.unit() as session:
        await session.execute(
            update(EmailVerificationRequest).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    with pytest.raises(CodeRejected, match="has expired"):
        await verify_email(db, mail_settings, username="dana", code=mailserver.last().code)


async def test_newer_code_replaces_the_older(
    db: Database, mail_settings: Settings, mailserver: MailServer
) -> None:
    await _unverified(db, mail_settings)
    await request_code(db, mail_settings, username_or_email="dana", purpose=VERIFY)
    first = mailserver.last().code
    await request_code(db, mail_settings, username_or_email="dana", purpose=VERIFY)
    second = mailserver.wait_for(2)[-1].code
    if first != second:  # one chance in a million that both are the same number
        with pytest.raises(CodeRejected, match="newer code was sent"):
            await verify_email(db, mail_settings, username="dana", code=first)
    await verify_email(db, mail_settings, username="dana", code=second)


async def test_rate_limit_per_hour(
    db: Database, mail_settings: Settings, mailserver: MailServer
) -> None:
    await _unverified(db, mail_settings)
    limit = mail_settings.security.codes_per_hour
    for who in ("dana", "ghost"):
        for _ in range(limit):
            await request_code(db, mail_settings, username_or_email=who, purpose=VERIFY)
        with pytest.raises(TooManyCodes, match=f"at most {limit} codes per hour"):
            await request_code(db, mail_settings, username_or_email=who, purpose=VERIFY)
    assert len(mailserver.messages) == limit
    # The latest code still works after the refused request.
    await verify_email(db, mail_settings, username="dana", code=mailserver.last().code)


async def test_failed_delivery_leaves_no_usable_code_and_keeps_the_old_one(
    db: Database, mail_settings: Settings, mailserver: MailServer
) -> None:
    await _unverified(db, mail_settings)
    await request_code(db, mail_settings, username_or_email="dana", purpose=VERIFY)
    old = mailserver.last().code
    down = smtp_settings(mail_settings, closed_port())
    with pytest.raises(MailError, match="cannot reach the mail server"):
        await request_code(db, down, username_or_email="dana", purpose=VERIFY)
    async with db.unit() as session:
        rows = list(
            await session.scalars(
                select(EmailVerificationRequest).order_by(EmailVerificationRequest.id)
            )
        )
    assert [(r.sent, r.invalidated_at is None) for r in rows] == [(True, True), (False, False)]
    assert AuditAction.CODE_NOT_SENT in await _actions(db)
    await verify_email(db, mail_settings, username="dana", code=old)


async def test_reset_password_ends_sessions(
    db: Database, mail_settings: Settings, mailserver: MailServer, users: dict[Role, UserInfo]
) -> None:
    before = users[Role.USER]
    await request_code(db, mail_settings, username_or_email="user1", purpose=RESET)
    message = mailserver.last(to="user1@school.example")
    assert message.subject == "BatchOps: your password reset code"
    for bad, why in [
        ("short", "at least 10 characters"),
        ("User1", "at least 10"),
        ("password123", "most common passwords"),
        ("qwertyuiop", "most common passwords"),
    ]:
        with pytest.raises(ValidationFailed, match=why):
            await reset_password(
                db, mail_settings, username="user1", code=message.code, new_password=bad
            )
    await _unverified(db, mail_settings, "longusername")
    with pytest.raises(ValidationFailed, match="must not be the username"):
        await reset_password(
            db, mail_settings, username="longusername", code="000000", new_password="LongUserName"
        )
    await reset_password(
        db, mail_settings, username="user1", code=message.code, new_password=NEW_PASSWORD
    )
    async with db.unit() as session:
        assert not await accounts.session_is_current(
            session, user_id=before.id, epoch=before.session_epoch
        )
    with pytest.raises(AuthenticationFailed, match="wrong username or password"):
        await _sign_in(db, mail_settings, "user1", TEST_PASSWORD)
    after = await _sign_in(db, mail_settings, "user1", NEW_PASSWORD)
    assert after.session_epoch == before.session_epoch + 1
    assert AuditAction.PASSWORD_RESET in await _actions(db)


async def test_reset_with_wrong_code_changes_nothing(
    db: Database, mail_settings: Settings, mailserver: MailServer, users: dict[Role, UserInfo]
) -> None:
    await request_code(db, mail_settings, username_or_email="user1", purpose=RESET)
    good = mailserver.last().code
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    with pytest.raises(CodeRejected, match="wrong"):
        await reset_password(
            db, mail_settings, username="user1", code=wrong, new_password=NEW_PASSWORD
        )
    assert (await _sign_in(db, mail_settings, "user1", TEST_PASSWORD)).username == "user1"
    async with db.unit() as session:
        row = await session.scalar(select(PasswordResetRequest))
        assert row is not None and row.attempts == 1 and row.used_at is None


async def test_parallel_guesses_cannot_exceed_the_attempt_cap(
    db: Database, mail_settings: Settings, mailserver: MailServer
) -> None:
    await _unverified(db, mail_settings)
    await request_code(db, mail_settings, username_or_email="dana", purpose=VERIFY)
    wrong = f"{(int(mailserver.last().code) + 1) % 1_000_000:06d}"
    limit = mail_settings.security.code_max_attempts
    results = await asyncio.gather(
        *[verify_email(db, mail_settings, username="dana", code=wrong) for _ in range(limit + 3)],
        return_exceptions=True,
    )
    problems = [r for r in results if isinstance(r, CodeRejected)]
    assert len(problems) == limit + 3
    assert {str(p) for p in problems} == {str(problems[0])} and not any(p.matched for p in problems)
    async with db.unit() as session:
        row = await session.scalar(select(EmailVerificationRequest))
        assert row is not None and row.attempts == limit and row.invalidated_at is not None


async def test_refused_address_looks_like_an_unknown_account(
    db: Database, db_settings: Settings
) -> None:
    with MailServer(refuse=("dana@school.example",)) as server:
        settings = smtp_settings(db_settings, server)
        await _unverified(db, settings)
        assert await request_code(db, settings, username_or_email="dana", purpose=VERIFY) is None
        assert server.messages == []
    async with db.unit() as session:
        row = await session.scalar(select(EmailVerificationRequest))
        assert row is not None and not row.sent and row.invalidated_at is not None
        detail = await session.scalar(
            select(AuditLog.detail).where(AuditLog.action == AuditAction.CODE_NOT_SENT)
        )
    assert detail is not None and "refused the address dana@school.example" in detail
