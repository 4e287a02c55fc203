"""Known errors: regex patterns on `"<code>: <message>"` that tag an incident and name a fix.

A pattern may be limited to one stage. When several active rows match, a stage-specific row
wins over a stage-agnostic one, then the lowest id (the oldest, usually the curated seed). A row
whose regex does not compile never matches (and is logged) instead of failing the incident.

Patterns run on RE2 (`pipeline/regex.py`), in time linear in the message: a failure message
carries text from the uploaded file, so a backtracking pattern would let one file stall incident
recording. `validate_pattern` refuses what RE2 cannot run (backreferences, lookarounds), naming
the construct; a row stored before that check never matches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core.enums import Remediation, Severity, Stage
from batchops_core.models import KnownError
from batchops_core.pipeline import regex

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KnownErrorInfo:
    """A known error as plain data (the incident workspace shows its name, fix and remediation)."""

    id: int
    name: str
    pattern: str
    stage: Stage | None
    severity: Severity
    category: str
    root_cause: str
    fix: str
    remediation: Remediation
    remediation_args: dict[str, Any] = field(default_factory=dict)
    active: bool = True

    @classmethod
    def of(cls, row: KnownError) -> KnownErrorInfo:
        return cls(
            id=row.id,
            name=row.name,
            pattern=row.pattern,
            stage=row.stage,
            severity=row.severity,
            category=row.category,
            root_cause=row.root_cause,
            fix=row.fix,
            remediation=row.remediation,
            remediation_args=dict(row.remediation_args or {}),
            active=row.active,
        )


def subject(code: str, message: str) -> str:
    """The text a pattern is searched in."""
    return f"{code}: {message}"


@lru_cache(maxsize=256)
def _runnable(pattern: str) -> bool:
    try:
        regex.check(pattern)
    except regex.UnsupportedPattern as exc:
        log.warning("known error pattern never matches: %s", exc)
        return False
    return True


def matches(known: KnownErrorInfo, code: str, message: str, stage: Stage | None) -> bool:
    if known.stage is not None and known.stage != stage:
        return False
    return _runnable(known.pattern) and regex.search(known.pattern, subject(code, message))


def best_match(
    candidates: list[KnownErrorInfo], code: str, message: str, stage: Stage | None
) -> KnownErrorInfo | None:
    hits = [k for k in candidates if k.active and matches(k, code, message, stage)]
    if not hits:
        return None
    return min(hits, key=lambda k: (k.stage is None, k.id))


async def active_known_errors(session: AsyncSession) -> list[KnownErrorInfo]:
    rows = await session.scalars(
        select(KnownError).where(KnownError.active.is_(True)).order_by(KnownError.id)
    )
    return [KnownErrorInfo.of(row) for row in rows]


async def match_known_error(
    session: AsyncSession, *, code: str, message: str, stage: Stage | None
) -> KnownErrorInfo | None:
    """The active known error that best matches this failure, if any."""
    return best_match(await active_known_errors(session), code, message, stage)


def validate_pattern(pattern: str) -> None:
    """Raise ValidationFailed when an operator's pattern is not a regex RE2 runs (see above)."""
    from batchops_core.errors import ValidationFailed

    try:
        regex.check(pattern)
    except regex.UnsupportedPattern as exc:
        raise ValidationFailed(f"{exc}.") from None
