"""Departments: the feeds files come from, and each one's validation profile.

Anyone may read departments (`VIEW_RUNS`); creating, editing, deactivating and activating need
`MANAGE_DEPARTMENTS` (admins) and write an audit row. What used to need SQL or config files:

* name (unique, case-insensitive), description, contact email (the "send to" of its reports);
* the **validation profile** (`pipeline/profile.py`): gradebook or not, key column (or none),
  required columns, header aliases. The runner reads it when it claims an upload, so an edit
  applies to the next upload without a restart;
* active: a deactivated department takes no new files (intake refuses them in one sentence that
  names it, whoever submits: a person, an ingest, a source); its history stays.

A rename carries the department's uploads (their `source`, which duplicate checks compare) and
the schedules that name it in their `department` argument, in the same transaction, so nothing
keeps pointing at the old name. Every change emits `department.updated` after its commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from batchops_core import audit
from batchops_core.errors import NotFound, ValidationFailed
from batchops_core.infra import events
from batchops_core.infra.db import UnitOfWork
from batchops_core.models import Department, Job, Upload, User
from batchops_core.permissions import Action, Actor, require
from batchops_core.pipeline.profile import ValidationProfile

EDITABLE = frozenset(
    {
        "name",
        "description",
        "contact_email",
        "gradebook",
        "key_column",
        "required_columns",
        "aliases",
    }
)
RESERVED = frozenset({"manual", "unspecified", "none", ""})
MAX_COLUMNS = 100


@dataclass(frozen=True)
class DepartmentRow:
    id: int
    name: str
    description: str
    contact_email: str
    active: bool
    gradebook: bool
    key_column: str | None
    required_columns: tuple[str, ...]
    aliases: dict[str, str]
    members: int
    last_submitted_at: datetime | None
    created_at: datetime

    @property
    def profile(self) -> ValidationProfile:
        return ValidationProfile(
            self.gradebook, self.key_column, self.required_columns, dict(self.aliases)
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "contact_email": self.contact_email,
            "active": self.active,
            "gradebook": self.gradebook,
            "key_column": self.key_column,
            "required_columns": list(self.required_columns),
            "aliases": dict(self.aliases),
            "members": self.members,
            "last_submitted_at": self.last_submitted_at,
            "created_at": self.created_at,
        }

    @classmethod
    def of(cls, row: Department, members: int) -> DepartmentRow:
        profile = ValidationProfile.of(row)
        return cls(
            id=row.id,
            name=row.name,
            description=row.description or "",
            contact_email=row.contact_email or "",
            active=row.active,
            gradebook=profile.gradebook,
            key_column=profile.key_column,
            required_columns=profile.required_columns,
            aliases=dict(profile.aliases),
            members=members,
            last_submitted_at=row.last_submitted_at,
            created_at=row.created_at,
        )


def _changed(uow: UnitOfWork, row: DepartmentRow) -> DepartmentRow:
    uow.emit(
        events.Event(
            type="department.updated", id=row.id, status="active" if row.active else "inactive"
        )
    )
    return row


async def _members(uow: UnitOfWork, department_id: int) -> int:
    return int(
        await uow.scalar(select(func.count(User.id)).where(User.department_id == department_id))
        or 0
    )


async def _row(uow: UnitOfWork, row: Department) -> DepartmentRow:
    await uow.flush()
    return DepartmentRow.of(row, await _members(uow, row.id))


async def list_departments(
    uow: UnitOfWork, *, actor: Actor, include_inactive: bool = True
) -> list[DepartmentRow]:
    """Every department by name (a school has tens, not thousands: no paging)."""
    require(actor, Action.VIEW_RUNS)
    query = select(Department).order_by(func.lower(Department.name))
    if not include_inactive:
        query = query.where(Department.active.is_(True))
    rows = (await uow.scalars(query)).all()
    counts = dict(
        (
            await uow.execute(
                select(User.department_id, func.count(User.id))
                .where(User.department_id.is_not(None))
                .group_by(User.department_id)
            )
        ).all()
    )
    return [DepartmentRow.of(r, int(counts.get(r.id, 0))) for r in rows]


async def _load(uow: UnitOfWork, ref: int | str) -> Department:
    text = str(ref).strip()
    row = await uow.get(Department, int(text)) if text.isdigit() else None
    if row is None:
        row = await uow.scalar(
            select(Department).where(func.lower(Department.name) == text.lower())
        )
    if row is None:
        raise NotFound(f"there is no department named or numbered '{ref}'.")
    return row


async def get_department(uow: UnitOfWork, *, actor: Actor, ref: int | str) -> DepartmentRow:
    """A department by id or name (case-insensitive)."""
    require(actor, Action.VIEW_RUNS)
    return await _row(uow, await _load(uow, ref))


# ------------------------------------------------------------------------------- validation


async def _check_name(uow: UnitOfWork, name: str, department_id: int | None = None) -> str:
    clean = " ".join((name or "").split())
    if clean.lower() in RESERVED:
        raise ValidationFailed(
            f"'{clean}' cannot name a department (it means an upload without one); choose another."
        )
    if len(clean) > 100:
        raise ValidationFailed("the department name is longer than 100 characters.")
    clash = await uow.scalar(
        select(Department.id).where(
            func.lower(Department.name) == clean.lower(), Department.id != (department_id or -1)
        )
    )
    if clash is not None:
        raise ValidationFailed(f"a department named '{clean}' already exists (#{clash}).")
    return clean


def _email(value: str | None) -> str:
    from batchops_core.accounts import check_email

    text = (value or "").strip()
    return check_email(text) if text else ""


def _column(value: str, what: str) -> str:
    from batchops_core.pipeline.columns import normalize_name

    name = normalize_name(value)
    if not name:
        raise ValidationFailed(f"the {what} {value!r} has no letters or digits; name a column.")
    return name


def _columns(value: Any) -> list[str]:
    if value is None:
        return []
    items = [c for c in (value.split(",") if isinstance(value, str) else value)]
    names = [_column(str(c), "required column") for c in items if str(c).strip()]
    if len(names) > MAX_COLUMNS:
        raise ValidationFailed(f"at most {MAX_COLUMNS} required columns; {len(names)} were given.")
    return list(dict.fromkeys(names))


def _aliases(value: Any) -> dict[str, str]:
    """`{"Roll No": "student_id"}` or `"Roll No=student_id, adm_no=student_id"`."""
    if value is None:
        return {}
    pairs: list[tuple[str, str]] = []
    if isinstance(value, str):
        for item in value.split(","):
            if not item.strip():
                continue
            raw, sep, target = item.partition("=")
            if not sep or not raw.strip() or not target.strip():
                raise ValidationFailed(f"the alias '{item.strip()}' must look like HEADER=column.")
            pairs.append((raw, target))
    elif isinstance(value, dict):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        raise ValidationFailed("aliases must be HEADER=column pairs.")
    out: dict[str, str] = {}
    for raw, target in pairs:
        source = _column(raw, "alias header")
        out[source] = _column(target, "alias target")
        if source == out[source]:
            raise ValidationFailed(f"the alias '{raw.strip()}' points at itself; remove it.")
    return out


def _key(value: Any) -> str | None:
    text = "" if value is None else str(value).strip()
    return _column(text, "key column") if text and text.lower() != "none" else None


_SETTERS: dict[str, Any] = {
    "description": lambda v: str(v or "").strip(),
    "contact_email": _email,
    "gradebook": bool,
    "key_column": _key,
    "required_columns": lambda v: _columns(v) or None,
    "aliases": _aliases,
}
"""How each editable field (but the name) is cleaned before it is stored."""


# -------------------------------------------------------------------------------- changes


async def create_department(
    uow: UnitOfWork,
    *,
    actor: Actor,
    name: str,
    description: str = "",
    contact_email: str = "",
    gradebook: bool = False,
    key_column: str | None = "student_id",
    required_columns: Any = None,
    aliases: Any = None,
) -> DepartmentRow:
    require(actor, Action.MANAGE_DEPARTMENTS)
    row = Department(
        name=await _check_name(uow, name),
        description=(description or "").strip(),
        contact_email=_email(contact_email),
        gradebook=bool(gradebook),
        key_column=_key(key_column),
        required_columns=_columns(required_columns) or None,
        aliases=_aliases(aliases),
        active=True,
    )
    uow.add(row)
    await uow.flush()
    result = await _row(uow, row)
    audit.record(
        uow,
        actor=actor,
        action="department.create",
        target_type="department",
        target_id=row.id,
        target_name=row.name,
        detail=result.profile.describe(),
    )
    return _changed(uow, result)


async def _carry_rename(uow: UnitOfWork, department_id: int, old: str, new: str) -> int:
    """Point uploads and schedules that name the department at its new name; return how many
    schedules changed (a school has tens: read and filter in Python, portable JSON)."""
    await uow.execute(
        update(Upload)
        .where(Upload.department_id == department_id)
        .values(source=new)
        .execution_options(synchronize_session=False)
    )
    changed = 0
    for job in (await uow.scalars(select(Job))).all():
        args = dict(job.arguments or {})
        if str(args.get("department", "")).lower() == old.lower():
            args["department"] = new
            job.arguments = args
            changed += 1
    return changed


async def update_department(
    uow: UnitOfWork, *, actor: Actor, ref: int | str, **changes: Any
) -> DepartmentRow:
    """Change any of the EDITABLE fields; unknown fields are refused by name."""
    require(actor, Action.MANAGE_DEPARTMENTS)
    unknown = sorted(set(changes) - EDITABLE)
    if unknown:
        raise ValidationFailed(
            f"cannot change {', '.join(unknown)}; editable: {', '.join(sorted(EDITABLE))}."
        )
    row = await _load(uow, ref)
    before = DepartmentRow.of(row, 0)
    diff: list[str] = []
    if "name" in changes:
        new = await _check_name(uow, changes["name"], row.id)
        if new != row.name:
            moved = await _carry_rename(uow, row.id, row.name, new)
            diff.append(f"name: {row.name!r} -> {new!r} ({moved} schedule(s) follow)")
            row.name = new
    for field_name, clean in _SETTERS.items():
        if field_name in changes:
            setattr(row, field_name, clean(changes[field_name]))
    after = await _row(uow, row)
    for label in ("description", "contact_email", "gradebook", "key_column"):
        if getattr(before, label) != getattr(after, label):
            diff.append(f"{label}: {getattr(before, label)!r} -> {getattr(after, label)!r}")
    if before.required_columns != after.required_columns:
        diff.append(f"required columns: {', '.join(after.required_columns) or 'none'}")
    if before.aliases != after.aliases:
        diff.append(f"aliases: {after.aliases}")
    audit.record(
        uow,
        actor=actor,
        action="department.update",
        target_type="department",
        target_id=row.id,
        target_name=row.name,
        detail="; ".join(diff) or "no change",
    )
    return _changed(uow, after)


async def set_department_active(
    uow: UnitOfWork, *, actor: Actor, ref: int | str, active: bool
) -> DepartmentRow:
    """Deactivate (no new uploads or ingests; history kept) or activate again."""
    require(actor, Action.MANAGE_DEPARTMENTS)
    row = await _load(uow, ref)
    if row.active != active:
        row.active = active
        audit.record(
            uow,
            actor=actor,
            action="department.activate" if active else "department.deactivate",
            target_type="department",
            target_id=row.id,
            target_name=row.name,
        )
    return _changed(uow, await _row(uow, row))


async def set_user_department(
    uow: UnitOfWork, *, actor: Actor, username: str, department: int | str | None
) -> str | None:
    """Put a user in a department (its staff receive the department's reports by mail), or
    take them out with None / "" / "none". Returns the department's name."""
    require(actor, Action.MANAGE_USERS)
    user = await uow.scalar(
        select(User).where(func.lower(User.username) == username.strip().lower())
    )
    if user is None:
        raise NotFound(f"there is no user named '{username}'.")
    text = "" if department is None else str(department).strip()
    target = None if text.lower() in ("", "none", "-") else await _load(uow, text)
    if target is not None and not target.active:
        raise ValidationFailed(f"the department '{target.name}' is deactivated; activate it first.")
    user.department_id = target.id if target else None
    name = target.name if target else None
    audit.record(
        uow,
        actor=actor,
        action="user.set_department",
        target_type="user",
        target_id=user.id,
        target_name=user.username,
        detail=name or "no department",
    )
    uow.emit(events.Event(type="user.updated", id=user.id, status="department"))
    return name
