"""User administration as the TUI and the CLI call it: create (and send the code), role, disable.

`create_account` owns its transactions because the account must be committed before the
verification mail goes out: a mail failure then leaves a real account and says how to send the
code later. The other admin actions are the session-level functions of `accounts`, re-exported here
so callers have one place to look.
"""

from __future__ import annotations

from batchops_core import accounts, codes
from batchops_core.accounts import (
    UserInfo,
    force_password_reset,
    list_users,
    set_active,
    set_role,
    unlock_user,
)
from batchops_core.enums import CodePurpose, Role
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.infra.mail import MailError
from batchops_core.permissions import Actor

__all__ = [
    "CodeNotSent",
    "create_account",
    "force_password_reset",
    "list_users",
    "set_active",
    "set_role",
    "unlock_user",
]


class CodeNotSent(MailError):
    """The account was created but its verification code could not be emailed; `user` is it."""

    def __init__(self, sentence: str, user: UserInfo) -> None:
        super().__init__(sentence)
        self.user = user


async def create_account(
    db: Database,
    settings: Settings,
    *,
    actor: Actor,
    username: str,
    email: str,
    role: Role,
    password: str,
    verified: bool | None = None,
) -> UserInfo:
    """Create an account and, unless it is verified (admins are), email it a verification code.

    Raises CodeNotSent (a MailError carrying the new account) when the code could not be sent.
    """
    async with db.unit() as session:
        user = await accounts.create_user(
            session,
            actor=actor,
            username=username,
            email=email,
            role=role,
            password=password,
            policy=settings.security,
            verified=verified,
        )
    if user.email_verified:
        return user
    try:
        await codes.issue_code(
            db, settings, user_id=user.id, purpose=CodePurpose.VERIFY, actor=actor
        )
    except MailError as exc:
        raise CodeNotSent(
            f"the account '{user.username}' was created, but its verification code could not be "
            f"sent: {str(exc).rstrip('.')}. Once mail works, run `batchops account send-code "
            f"{user.username} --purpose verify`.",
            user,
        ) from None
    return user
