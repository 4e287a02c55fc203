"""One-time codes by email: verify an address, reset a password.

Design decisions:

* A code is a random 6-digit number, stored only as an argon2 hash, valid `code_ttl_minutes`, usable
  once, for at most `code_max_attempts` tries; issuing a newer one invalidates the older ones.
* A code row becomes usable (`sent`) only after the SMTP server accepted the message. The row is
  written first (so a crash mid-send leaves an unusable row, never a usable unsent one) and the
  older codes are invalidated only after the new message went out, so a failed delivery does not
  kill the code the person already has.
* `request_code` answers the same way whether or not an account matches: for no match it still
  connects and logs in to the SMTP server (so a broken server fails both ways alike), and rate
  limits by the identifier as it would by the account.
* Attempts are claimed with one conditional UPDATE before the hash is compared, so parallel
  guesses cannot exceed the cap, and a code is marked used with `WHERE used_at IS NULL`.
* No enumeration: every answer that can be given without the right code (wrong, none waiting,
  expired, attempts used up) is one sentence, whether the account exists or not; the precise
  reason (used, replaced, expired, too many attempts) is told only to someone who typed a real
  code, and is always in the audit log. Requests and checks answer after at least
  `security.answer_seconds` (`even_time`), so the time does not tell either.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core import audit
from batchops_core.audit import AuditAction
from batchops_core.enums import CodePurpose
from batchops_core.errors import BatchOpsError, ValidationFailed
from batchops_core.infra import mail
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import AuditLog, EmailVerificationRequest, PasswordResetRequest, User
from batchops_core.passwords import check_password, hash_password
from batchops_core.permissions import Actor

CODE_DIGITS = 6
RECENT_CODES = 5
"""How many recent codes are compared to tell 'already used' or 'replaced' from 'wrong'."""

# Codes are short-lived and capped by attempts; OWASP's minimum argon2id cost keeps offline guessing
# slow without making every check cost as much as a password hash.
_code_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)

CodeRequest = EmailVerificationRequest | PasswordResetRequest
MODELS: dict[CodePurpose, type[EmailVerificationRequest] | type[PasswordResetRequest]] = {
    CodePurpose.VERIFY: EmailVerificationRequest,
    CodePurpose.RESET: PasswordResetRequest,
}


class CodeProblem(StrEnum):
    WRONG = "wrong"
    EXPIRED = "expired"
    USED = "used"
    SUPERSEDED = "superseded"
    TOO_MANY_ATTEMPTS = "too many attempts"
    NONE_PENDING = "none pending"


_SENTENCES = {
    CodeProblem.EXPIRED: "this code has expired; ask for a new code.",
    CodeProblem.USED: "this code has already been used; ask for a new code if you need one.",
    CodeProblem.SUPERSEDED: (
        "a newer code was sent after this one; use the code from the latest message."
    ),
    CodeProblem.TOO_MANY_ATTEMPTS: (
        "too many wrong attempts: this code no longer works; ask for a new code."
    ),
    CodeProblem.NONE_PENDING: "no code is waiting for this account; ask for a new code.",
}


NOT_VALID = (
    "the code is wrong or no longer valid; use the code from the latest message, or ask for a "
    "new code."
)
"""The one answer for a code that matches nothing, whatever the account (no enumeration)."""


class CodeRejected(ValidationFailed):
    """The code given is not (or no longer) valid; `problem` says why (for the audit log)."""

    def __init__(self, problem: CodeProblem, attempts_left: int = 0, *, matched: bool = False):
        self.problem = problem
        self.attempts_left = attempts_left
        self.matched = matched
        super().__init__(_SENTENCES[problem] if matched else NOT_VALID)


@asynccontextmanager
async def even_time(seconds: float) -> AsyncIterator[None]:
    """Let the block take at least `seconds`, whether it returns or raises."""
    start = time.monotonic()
    try:
        yield
    finally:
        left = seconds - (time.monotonic() - start)
        if left > 0:
            await asyncio.sleep(left)


class TooManyCodes(BatchOpsError):
    """More codes were asked for in the last hour than `codes_per_hour` allows."""


@dataclass(frozen=True)
class _Recipient:
    id: int
    username: str
    email: str


def _new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def _matches(code_hash: str, code: str) -> bool:
    try:
        return _code_hasher.verify(code_hash, code.strip())
    except (VerificationError, InvalidHashError):
        return False


def _message(
    purpose: CodePurpose, user: _Recipient, code: str, ttl: int, forced: bool
) -> tuple[str, str, str]:
    if purpose is CodePurpose.VERIFY:
        subject = "BatchOps: your email verification code"
        why = "Use this code to verify the email address of your BatchOps account"
        where, command = "Verify email", f"batchops account verify {user.username} --code {code}"
    else:
        subject = "BatchOps: your password reset code"
        why = (
            "An administrator asked you to choose a new password for your BatchOps account"
            if forced
            else "Use this code to choose a new password for your BatchOps account"
        )
        where = "Forgot password"
        command = f"batchops account reset {user.username} --code {code}"
    text = (
        f"Hello {user.username},\n\n{why} '{user.username}':\n\n    {code}\n\n"
        f"It expires in {ttl} minutes and works once. Enter it in BatchOps under '{where}', or "
        f"run:\n\n    {command}\n\nIf you did not ask for this code, ignore this message.\n"
    )
    html = (
        f"<p>Hello {user.username},</p><p>{why} <b>{user.username}</b>:</p>"
        f'<p style="font-size:1.6em;letter-spacing:0.2em"><b>{code}</b></p>'
        f"<p>It expires in {ttl} minutes and works once. Enter it in BatchOps under "
        f"<i>{where}</i>, or run <code>{command}</code>.</p>"
        "<p>If you did not ask for this code, ignore this message.</p>"
    )
    return subject, text, html


async def issue_code(
    db: Database,
    settings: Settings,
    *,
    user_id: int,
    purpose: CodePurpose,
    actor: Actor | None = None,
    forced: bool = False,
) -> None:
    """Create a code for one account, email it, and make it the account's only usable code.

    Raises MailError when delivery fails; the new code is then dead and older codes still work.
    """
    model = MODELS[purpose]
    code = _new_code()
    ttl = settings.security.code_ttl_minutes
    async with db.unit() as session:
        user = await session.get(User, user_id)
        if user is None:
            raise ValidationFailed("that account no longer exists.")
        recipient = _Recipient(user.id, user.username, user.email)
        row = model(
            user_id=user.id,
            code_hash=_code_hasher.hash(code),
            expires_at=utcnow() + timedelta(minutes=ttl),
            sent=False,
        )
        session.add(row)
        await session.flush()
        row_id = row.id
    subject, text, html = _message(purpose, recipient, code, ttl, forced)
    target = {"target_type": "user", "target_id": recipient.id, "target_name": recipient.username}
    try:
        await mail.send_mail(settings, to=[recipient.email], subject=subject, text=text, html=html)
    except mail.MailError as exc:
        async with db.unit() as session:
            await session.execute(
                update(model).where(model.id == row_id).values(invalidated_at=utcnow())
            )
            audit.record(
                session,
                actor=actor,
                action=AuditAction.CODE_NOT_SENT,
                detail=f"purpose={purpose.value}; {exc}",
                **target,
            )
        raise
    async with db.unit() as session:
        now = utcnow()
        await session.execute(
            update(model)
            .where(model.id == row_id, model.invalidated_at.is_(None))
            .values(sent=True)
        )
        await session.execute(
            update(model)
            .where(
                model.user_id == recipient.id,
                model.id < row_id,
                model.used_at.is_(None),
                model.invalidated_at.is_(None),
            )
            .values(invalidated_at=now)
        )
        audit.record(
            session,
            actor=actor,
            action=AuditAction.CODE_SENT,
            detail=f"purpose={purpose.value} to={recipient.email}",
            **target,
        )


async def _eligible(
    session: AsyncSession, identifier: str, purpose: CodePurpose
) -> list[_Recipient]:
    if "@" in identifier:
        where = func.lower(User.email) == identifier.lower()
    else:
        where = User.username == identifier.lower()
    query = select(User).where(where, User.active.is_(True)).order_by(User.id)
    if purpose is CodePurpose.VERIFY:
        query = query.where(User.email_verified.is_(False))
    return [_Recipient(u.id, u.username, u.email) for u in await session.scalars(query)]


async def _sent_last_hour(session: AsyncSession, user_id: int, purpose: CodePurpose) -> int:
    model = MODELS[purpose]
    since = utcnow() - timedelta(hours=1)
    count = await session.scalar(
        select(func.count(model.id)).where(
            model.user_id == user_id, model.sent.is_(True), model.created_at >= since
        )
    )
    return count or 0


async def _unknown_last_hour(session: AsyncSession, identifier: str, purpose: CodePurpose) -> int:
    since = utcnow() - timedelta(hours=1)
    count = await session.scalar(
        select(func.count(AuditLog.id)).where(
            AuditLog.action == AuditAction.CODE_UNKNOWN_ACCOUNT.value,
            AuditLog.target_name == identifier.lower(),
            AuditLog.detail == f"purpose={purpose.value}",
            AuditLog.created_at >= since,
        )
    )
    return count or 0


def _too_many(settings: Settings) -> TooManyCodes:
    return TooManyCodes(
        f"at most {settings.security.codes_per_hour} codes per hour can be sent for one account; "
        "use the latest code you received or try again later."
    )


async def request_code(
    db: Database, settings: Settings, *, username_or_email: str, purpose: CodePurpose
) -> None:
    """Email a code to the matching account, if any; the answer never reveals whether one exists.

    It comes after at least `security.answer_seconds`, with or without an account (see
    `_request_code` for the rest).
    """
    async with even_time(settings.security.answer_seconds):
        await _request_code(db, settings, username_or_email=username_or_email, purpose=purpose)


async def _request_code(
    db: Database, settings: Settings, *, username_or_email: str, purpose: CodePurpose
) -> None:
    """The work of `request_code`.

    'Matching' means active, and for `verify` not yet verified. Raises MailError when the mail
    server cannot be used (for a match or not), TooManyCodes past the hourly limit. A recipient
    the server refuses is only audited and logged: telling would reveal the account.
    """
    identifier = username_or_email.strip()
    if not identifier or len(identifier) > 254:
        raise ValidationFailed("give the username or the email address of the account.")
    mail.check_configured(settings)  # "not configured" is the same answer for everyone
    limit = settings.security.codes_per_hour
    async with db.unit() as session:
        recipients = await _eligible(session, identifier, purpose)
        if recipients:
            counts = [await _sent_last_hour(session, r.id, purpose) for r in recipients]
            recipients = [r for r, n in zip(recipients, counts, strict=True) if n < limit]
            limited = not recipients
        else:
            limited = await _unknown_last_hour(session, identifier, purpose) >= limit
    if limited:
        raise _too_many(settings)
    if not recipients:
        _code_hasher.hash(_new_code())  # the work a real code costs
        await mail.probe(settings)
        async with db.unit() as session:
            audit.record(
                session,
                actor=None,
                action=AuditAction.CODE_UNKNOWN_ACCOUNT,
                target_name=identifier.lower(),
                detail=f"purpose={purpose.value}",
            )
        return
    for recipient in recipients:
        try:
            await issue_code(db, settings, user_id=recipient.id, purpose=purpose)
        except mail.RecipientRefused:
            # Saying so would reveal that the account exists (and its address); the failure is
            # in the audit log and the server log, and the person sees what an unknown name sees.
            continue


_DUMMY: list[str] = []


def _dummy_code_hash() -> str:
    """A code hash to compare against when there is no code, made on first use."""
    if not _DUMMY:
        _DUMMY.append(_code_hasher.hash(_new_code()))
    return _DUMMY[0]


def _match_older(rows: list[CodeRequest], code: str, max_attempts: int) -> CodeProblem | None:
    for row in rows:
        if _matches(row.code_hash, code):
            if row.used_at is not None:
                return CodeProblem.USED
            if row.attempts >= max_attempts:
                return CodeProblem.TOO_MANY_ATTEMPTS
            return CodeProblem.SUPERSEDED
    return None


async def _consume(
    session: AsyncSession, settings: Settings, user_id: int, purpose: CodePurpose, code: str
) -> tuple[CodeProblem | None, int]:
    """Check `code` against the account's newest code and use it; return (problem, tries left)."""
    model = MODELS[purpose]
    max_attempts = settings.security.code_max_attempts
    rows = list(
        await session.scalars(
            select(model)
            .where(model.user_id == user_id, model.sent.is_(True))
            .order_by(model.id.desc())
            .limit(RECENT_CODES)
        )
    )
    if not rows:
        _matches(_dummy_code_hash(), code)  # the cost of a comparison, as for a real account
        return CodeProblem.NONE_PENDING, 0
    latest, now = rows[0], utcnow()
    if latest.used_at is not None or latest.invalidated_at is not None:
        return _match_older(rows, code, max_attempts) or CodeProblem.NONE_PENDING, 0
    if latest.expires_at <= now:
        return (CodeProblem.EXPIRED if _matches(latest.code_hash, code) else CodeProblem.WRONG), 0
    claimed = await session.execute(
        update(model)
        .where(
            model.id == latest.id,
            model.attempts < max_attempts,
            model.used_at.is_(None),
            model.invalidated_at.is_(None),
        )
        .values(attempts=model.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount == 0:
        spent = _matches(latest.code_hash, code)
        return (CodeProblem.TOO_MANY_ATTEMPTS if spent else CodeProblem.WRONG), 0
    if _matches(latest.code_hash, code):
        used = await session.execute(
            update(model)
            .where(model.id == latest.id, model.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return (None, 0) if used.rowcount == 1 else (CodeProblem.USED, 0)
    attempts = await session.scalar(select(model.attempts).where(model.id == latest.id)) or 0
    if attempts >= max_attempts:
        await session.execute(
            update(model)
            .where(model.id == latest.id)
            .values(invalidated_at=now)
            .execution_options(synchronize_session=False)
        )
    older = _match_older(rows[1:], code, max_attempts)
    if older is not None:
        return older, max(0, max_attempts - attempts)
    return CodeProblem.WRONG, max(0, max_attempts - attempts)


async def _use_code(
    session: AsyncSession, settings: Settings, username: str, purpose: CodePurpose, code: str
) -> tuple[User | None, CodeProblem | None, int]:
    user = await session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None or not user.active:
        problem, left = CodeProblem.NONE_PENDING, 0
    else:
        problem, left = await _consume(session, settings, user.id, purpose, code)
    if problem is not None:
        audit.record(
            session,
            actor=None,
            action=AuditAction.CODE_REJECTED,
            target_type="user" if user else "",
            target_id=user.id if user else None,
            target_name=user.username if user else username.strip().lower(),
            detail=f"purpose={purpose.value}; {problem.value}",
        )
    return user, problem, left


def _actor(user: User) -> Actor:
    return Actor(id=user.id, username=user.username, role=user.role)


def _rejected(problem: CodeProblem, left: int) -> CodeRejected:
    """Only problems found by matching a real code are told as such (see the module doc)."""
    matched = problem not in (CodeProblem.WRONG, CodeProblem.NONE_PENDING)
    return CodeRejected(problem, left, matched=matched)


async def verify_email(db: Database, settings: Settings, *, username: str, code: str) -> None:
    """Mark the account's email verified with a code from `request_code`, or raise CodeRejected."""
    async with even_time(settings.security.answer_seconds):
        await _verify_email(db, settings, username=username, code=code)


async def _verify_email(db: Database, settings: Settings, *, username: str, code: str) -> None:
    async with db.unit() as session:
        user, problem, left = await _use_code(session, settings, username, CodePurpose.VERIFY, code)
        if problem is None and user is not None:
            user.email_verified = True
            audit.record(
                session,
                actor=_actor(user),
                action=AuditAction.EMAIL_VERIFIED,
                target_type="user",
                target_id=user.id,
                target_name=user.username,
                detail=f"email={user.email}",
            )
    if problem is not None:  # raised after the commit so the attempt and the audit row stay
        raise _rejected(problem, left)


async def reset_password(
    db: Database, settings: Settings, *, username: str, code: str, new_password: str
) -> None:
    """Set a new password with a reset code; ends every open session of the account.

    The password policy is checked first, so a refused password does not spend an attempt.
    """
    check_password(new_password, username, settings.security)
    async with even_time(settings.security.answer_seconds):
        await _reset_password(db, settings, username=username, code=code, new_password=new_password)


async def _reset_password(
    db: Database, settings: Settings, *, username: str, code: str, new_password: str
) -> None:
    async with db.unit() as session:
        user, problem, left = await _use_code(session, settings, username, CodePurpose.RESET, code)
        if problem is None and user is not None:
            user.password_hash = hash_password(new_password)
            user.must_reset_password = False
            user.session_epoch += 1
            user.failed_logins = 0
            user.locked_until = None
            user.email_verified = True  # the code reached this address, which proves it
            audit.record(
                session,
                actor=_actor(user),
                action=AuditAction.PASSWORD_RESET,
                target_type="user",
                target_id=user.id,
                target_name=user.username,
                detail="with an emailed code; sessions ended",
            )
    if problem is not None:
        raise _rejected(problem, left)
