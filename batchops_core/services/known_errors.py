"""Known errors admin: add, edit, disable, delete, and test a pattern on the last incidents.

Reading needs `VIEW_ISSUES`; changes need `MANAGE_KNOWN_ERRORS` (admins) and write an audit row;
testing a pattern changes nothing and is open to whoever triages (`MANAGE_ISSUES`).

Every pattern is checked by the same function that runs it (`pipeline/regex.py`, RE2, linear
time): what RE2 cannot run (backreference, lookaround, …) is refused with the construct named,
so a saved pattern is exactly one the incident recorder can match. "Test" runs a pattern — saved
or not — over the newest incidents (50 by default) the way the recorder would (`"<code>:
<message>"`, limited to the stage if one is given) and says which matched, so an operator sees
what a pattern catches before it tags anything. Deleting a known error leaves its incidents
(their link is cleared by the foreign key); disabling keeps it for the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from batchops_core import audit
from batchops_core.enums import Remediation, Severity, Stage
from batchops_core.errors import NotFound, ValidationFailed
from batchops_core.infra import events
from batchops_core.infra.db import UnitOfWork
from batchops_core.known_errors import KnownErrorInfo, subject, validate_pattern
from batchops_core.models import Incident, KnownError
from batchops_core.permissions import Action, Actor, require
from batchops_core.pipeline import regex

TEST_WINDOW = 50
EDITABLE = frozenset(
    {
        "name",
        "pattern",
        "stage",
        "severity",
        "category",
        "root_cause",
        "fix",
        "remediation",
        "remediation_args",
    }
)


@dataclass(frozen=True)
class IncidentHit:
    id: int
    title: str
    error_code: str
    stage: Stage | None
    message: str
    known_error: str | None
    """The known error the incident is tagged with today."""


@dataclass(frozen=True)
class PatternTest:
    pattern: str
    stage: Stage | None
    checked: int
    matched: list[IncidentHit]

    def as_json(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "stage": self.stage.value if self.stage else None,
            "checked": self.checked,
            "matched": [
                {
                    "id": h.id,
                    "title": h.title,
                    "error_code": h.error_code,
                    "stage": h.stage.value if h.stage else None,
                    "message": h.message,
                    "known_error": h.known_error,
                }
                for h in self.matched
            ],
        }


def known_error_json(info: KnownErrorInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "pattern": info.pattern,
        "stage": info.stage.value if info.stage else None,
        "severity": info.severity.value,
        "category": info.category,
        "root_cause": info.root_cause,
        "fix": info.fix,
        "remediation": info.remediation.value,
        "remediation_args": dict(info.remediation_args),
        "active": info.active,
    }


def _changed(uow: UnitOfWork, info: KnownErrorInfo, status: str | None = None) -> KnownErrorInfo:
    state = status or ("active" if info.active else "disabled")
    uow.emit(events.Event(type="known_error.updated", id=info.id, status=state))
    return info


# ---------------------------------------------------------------------------------- reading


async def list_known_errors(
    uow: UnitOfWork, *, actor: Actor, include_inactive: bool = True
) -> list[KnownErrorInfo]:
    require(actor, Action.VIEW_ISSUES)
    query = select(KnownError).order_by(KnownError.id)
    if not include_inactive:
        query = query.where(KnownError.active.is_(True))
    return [KnownErrorInfo.of(r) for r in (await uow.scalars(query)).all()]


async def _load(uow: UnitOfWork, ref: int | str) -> KnownError:
    text = str(ref).strip()
    row = await uow.get(KnownError, int(text)) if text.isdigit() else None
    if row is None:
        row = await uow.scalar(
            select(KnownError).where(func.lower(KnownError.name) == text.lower())
        )
    if row is None:
        raise NotFound(f"there is no known error named or numbered '{ref}'.")
    return row


async def get_known_error(uow: UnitOfWork, *, actor: Actor, ref: int | str) -> KnownErrorInfo:
    require(actor, Action.VIEW_ISSUES)
    return KnownErrorInfo.of(await _load(uow, ref))


# ------------------------------------------------------------------------------- validation


def _choice(enum_cls: Any, value: Any, what: str) -> Any:
    try:
        return enum_cls(str(value).strip().lower())
    except ValueError:
        choices = ", ".join(m.value for m in enum_cls)
        raise ValidationFailed(f"the {what} '{value}' is not one of: {choices}.") from None


def _stage(value: Any) -> Stage | None:
    if value is None or str(value).strip().lower() in ("", "any", "none", "-"):
        return None
    return _choice(Stage, value, "stage")  # type: ignore[no-any-return]


def _pattern(value: Any) -> str:
    text = str(value or "")
    if not text.strip():
        raise ValidationFailed("the pattern is empty; give a regex such as ^CSV_ENCODING.")
    if len(text) > 2000:
        raise ValidationFailed("the pattern is longer than 2,000 characters.")
    validate_pattern(text)
    return text


def _args(value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(f"the remediation arguments are not JSON ({exc.msg}).") from None
    if not isinstance(value, dict):
        raise ValidationFailed('the remediation arguments must be a JSON object, e.g. {"a": 1}.')
    return dict(value)


def _text(limit: int, what: str) -> Any:
    def clean(value: Any) -> str:
        text = str(value or "").strip()
        if len(text) > limit:
            raise ValidationFailed(f"the {what} is longer than {limit} characters.")
        return text

    return clean


_SETTERS: dict[str, Any] = {
    "pattern": _pattern,
    "stage": _stage,
    "severity": lambda v: _choice(Severity, v, "severity"),
    "category": _text(64, "category"),
    "root_cause": _text(4000, "root cause"),
    "fix": _text(4000, "fix"),
    "remediation": lambda v: _choice(Remediation, v or "none", "remediation"),
    "remediation_args": _args,
}


async def _check_name(uow: UnitOfWork, name: Any, known_id: int | None = None) -> str:
    clean = " ".join(str(name or "").split())
    if not clean:
        raise ValidationFailed("the known error needs a short name.")
    if len(clean) > 100:
        raise ValidationFailed("the name is longer than 100 characters.")
    clash = await uow.scalar(
        select(KnownError.id).where(
            func.lower(KnownError.name) == clean.lower(), KnownError.id != (known_id or -1)
        )
    )
    if clash is not None:
        raise ValidationFailed(f"a known error named '{clean}' already exists (#{clash}).")
    return clean


# ---------------------------------------------------------------------------------- changes


async def create_known_error(
    uow: UnitOfWork,
    *,
    actor: Actor,
    name: str,
    pattern: str,
    stage: Stage | str | None = None,
    severity: Severity | str = Severity.MEDIUM,
    category: str = "data",
    root_cause: str = "",
    fix: str = "",
    remediation: Remediation | str = Remediation.NONE,
    remediation_args: Any = None,
) -> KnownErrorInfo:
    require(actor, Action.MANAGE_KNOWN_ERRORS)
    values = {
        "pattern": pattern,
        "stage": stage,
        "severity": severity,
        "category": category,
        "root_cause": root_cause,
        "fix": fix,
        "remediation": remediation,
        "remediation_args": remediation_args,
    }
    row = KnownError(
        name=await _check_name(uow, name),
        active=True,
        **{k: _SETTERS[k](v) for k, v in values.items()},
    )
    uow.add(row)
    await uow.flush()
    audit.record(
        uow,
        actor=actor,
        action="known_error.create",
        target_type="known_error",
        target_id=row.id,
        target_name=row.name,
        detail=row.pattern,
    )
    return _changed(uow, KnownErrorInfo.of(row))


async def update_known_error(
    uow: UnitOfWork, *, actor: Actor, ref: int | str, **changes: Any
) -> KnownErrorInfo:
    require(actor, Action.MANAGE_KNOWN_ERRORS)
    unknown = sorted(set(changes) - EDITABLE)
    if unknown:
        raise ValidationFailed(
            f"cannot change {', '.join(unknown)}; editable: {', '.join(sorted(EDITABLE))}."
        )
    row = await _load(uow, ref)
    before = known_error_json(KnownErrorInfo.of(row))
    if "name" in changes:
        row.name = await _check_name(uow, changes["name"], row.id)
    for field_name, clean in _SETTERS.items():
        if field_name in changes:
            setattr(row, field_name, clean(changes[field_name]))
    await uow.flush()
    info = KnownErrorInfo.of(row)
    after = known_error_json(info)
    diff = [f"{k}: {before[k]!r} -> {after[k]!r}" for k in after if before[k] != after[k]]
    audit.record(
        uow,
        actor=actor,
        action="known_error.update",
        target_type="known_error",
        target_id=row.id,
        target_name=row.name,
        detail="; ".join(diff) or "no change",
    )
    return _changed(uow, info)


async def set_known_error_active(
    uow: UnitOfWork, *, actor: Actor, ref: int | str, active: bool
) -> KnownErrorInfo:
    """Disable (never matches again; kept for the incidents it tagged) or enable."""
    require(actor, Action.MANAGE_KNOWN_ERRORS)
    row = await _load(uow, ref)
    if row.active != active:
        if active:
            validate_pattern(row.pattern)  # a row stored before the RE2 check must be fixed first
        row.active = active
        audit.record(
            uow,
            actor=actor,
            action="known_error.enable" if active else "known_error.disable",
            target_type="known_error",
            target_id=row.id,
            target_name=row.name,
        )
    return _changed(uow, KnownErrorInfo.of(row))


async def delete_known_error(uow: UnitOfWork, *, actor: Actor, ref: int | str) -> KnownErrorInfo:
    """Delete the row; incidents it tagged keep their text and lose only the link."""
    require(actor, Action.MANAGE_KNOWN_ERRORS)
    row = await _load(uow, ref)
    info = KnownErrorInfo.of(row)
    tagged = await uow.scalar(
        select(func.count(Incident.id)).where(Incident.known_error_id == row.id)
    )
    await uow.delete(row)
    await uow.flush()
    audit.record(
        uow,
        actor=actor,
        action="known_error.delete",
        target_type="known_error",
        target_id=info.id,
        target_name=info.name,
        detail=f"{info.pattern} (tagged {tagged or 0} incident(s))",
    )
    return _changed(uow, info, "deleted")


async def try_pattern(
    uow: UnitOfWork,
    *,
    actor: Actor,
    pattern: str,
    stage: Stage | str | None = None,
    limit: int = TEST_WINDOW,
) -> PatternTest:
    """Which of the newest `limit` incidents the pattern (saved or not) would match."""
    require(actor, Action.MANAGE_ISSUES)
    text = _pattern(pattern)
    wanted = _stage(stage)
    limit = max(1, min(int(limit), 500))
    rows = (
        await uow.execute(
            select(Incident, KnownError.name)
            .outerjoin(KnownError, KnownError.id == Incident.known_error_id)
            .order_by(Incident.created_at.desc(), Incident.id.desc())
            .limit(limit)
        )
    ).all()
    hits = [
        IncidentHit(i.id, i.title, i.error_code, i.stage, i.message, known)
        for i, known in rows
        if (wanted is None or i.stage == wanted)
        and regex.search(text, subject(i.error_code, i.message))
    ]
    return PatternTest(text, wanted, len(rows), hits)
