"""No enumeration (issue #10, item 8): whether an account exists changes neither the words nor
the time of an answer — code requests, wrong codes, sign-ins during a lockout.

Timing is compared on medians of several tries with a generous bound, so that a loaded 2-core
machine does not make the test flaky while a 130 ms difference (what it was) still fails it.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Awaitable, Callable

import pytest

from batchops_core import accounts
from batchops_core.codes import CodeRejected, request_code, verify_email
from batchops_core.enums import CodePurpose, Role
from batchops_core.errors import AuthenticationFailed
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.permissions import SYSTEM
from tests.mailserver import MailServer

ANSWER = 1.0
TRIES = 3
TOLERANCE = 0.12


def _even(settings: Settings, **security: object) -> Settings:
    changes = {"answer_seconds": ANSWER, "codes_per_hour": 100, **security}
    return dataclasses.replace(settings, security=dataclasses.replace(settings.security, **changes))


async def _median(call: Callable[[], Awaitable[object]]) -> tuple[float, set[str]]:
    took, answers = [], set()
    for _ in range(TRIES):
        start = time.perf_counter()
        try:
            await call()
            answers.add("ok")
        except Exception as exc:
            answers.add(f"{type(exc).__name__}: {exc}")
        took.append(time.perf_counter() - start)
    return statistics.median(took), answers


async def _dana(db: Database, settings: Settings) -> None:
    async with db.unit() as session:
        await accounts.create_user(
            session,
            actor=SYSTEM,
            username="dana",
            email="dana@school.example",
            role=Role.USER,
            password="correct horse battery",
            policy=settings.security,
            verified=True,
        )


async def test_code_requests_and_wrong_codes_look_alike(
    db: Database, mail_settings: Settings, mailserver: MailServer
) -> None:
    settings = _even(mail_settings)
    await _dana(db, settings)
    reset = CodePurpose.RESET

    known, known_says = await _median(
        lambda: request_code(db, settings, username_or_email="dana", purpose=reset)
    )
    unknown, unknown_says = await _median(
        lambda: request_code(db, settings, username_or_email="nobody", purpose=reset)
    )
    assert known_says == unknown_says == {"ok"}
    assert len(mailserver.messages) == TRIES, "the real account did get its codes"
    assert known >= ANSWER and unknown >= ANSWER
    assert abs(known - unknown) < TOLERANCE, (known, unknown)

    # dana has a code waiting; a wrong guess must read like one for a name that does not exist.
    wrong_known, said_known = await _median(lambda: accounts_reset(db, settings, "dana", "000000"))
    wrong_unknown, said_unknown = await _median(
        lambda: accounts_reset(db, settings, "nobody", "000000")
    )
    assert said_known == said_unknown and len(said_known) == 1, (said_known, said_unknown)
    assert "attempt" not in next(iter(said_known))
    assert abs(wrong_known - wrong_unknown) < TOLERANCE, (wrong_known, wrong_unknown)
    with pytest.raises(CodeRejected) as unverified:
        await verify_email(db, settings, username="nobody", code="000000")
    assert str(unverified.value) in next(iter(said_known))


async def accounts_reset(db: Database, settings: Settings, name: str, code: str) -> None:
    from batchops_core.codes import reset_password

    await reset_password(db, settings, username=name, code=code, new_password="another long one")


async def test_lockout_reads_the_same_for_any_name(db: Database, db_settings: Settings) -> None:
    settings = _even(db_settings, lockout_threshold=3)
    await _dana(db, settings)

    async def sign_in(name: str, password: str) -> str:
        async with db.unit() as session:  # committed even on refusal, as the callers do
            try:
                await accounts.authenticate(
                    session, username=name, password=password, policy=settings.security
                )
            except AuthenticationFailed as exc:
                return str(exc)
        return "signed in"

    for name in ("dana", "nobody"):
        answers = [await sign_in(name, "wrong guess") for _ in range(3)]
        assert answers == ["wrong username or password."] * 3, (name, answers)
    locked_known = await sign_in("dana", "wrong guess")
    locked_unknown = await sign_in("nobody", "wrong guess")
    assert locked_known == locked_unknown and "locked" in locked_known
    # A locked account says the same with its right password: the lockout is no oracle.
    assert await sign_in("dana", "correct horse battery") == locked_known

    slow_known, _ = await _median(lambda: sign_in("dana", "wrong guess"))
    slow_unknown, _ = await _median(lambda: sign_in("nobody", "wrong guess"))
    assert slow_known >= ANSWER and slow_unknown >= ANSWER
    assert abs(slow_known - slow_unknown) < TOLERANCE, (slow_known, slow_unknown)
