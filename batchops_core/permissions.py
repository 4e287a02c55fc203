"""The role matrix, checked by every service call whatever the caller (TUI, CLI, daemon).

Screens use `allowed()` only to hide what a role may not do; the services call `require()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from batchops_core.enums import Role
from batchops_core.errors import PermissionDenied


class Action(StrEnum):
    UPLOAD_FILES = "upload files"
    VIEW_RUNS = "view runs"
    VIEW_ISSUES = "view issues"
    VIEW_REPORTS = "view reports"
    EXPORT_REPORTS = "export reports to the export folder"
    MANAGE_ISSUES = "manage issues"
    EDIT_SCHEDULES = "create or edit schedules"
    RUN_SCHEDULES = "run schedules"
    MANAGE_USERS = "manage users"
    VIEW_AUDIT = "read the audit log"
    VIEW_ATTENDANCE = "view attendance"
    MANAGE_ATTENDANCE = "manage shifts, holidays, devices and employees"
    REQUEST_PUNCH = "request a manual punch"
    APPROVE_PUNCHES = "approve or reject manual punches"
    CORRECT_ATTENDANCE = "import punches, process and correct attendance"
    VIEW_SOURCES = "view sources and records"
    EDIT_SOURCES = "create or edit sources"
    RUN_SOURCES = "sync sources"
    EDIT_CALENDAR = "edit the school calendar"
    MANAGE_DEPARTMENTS = "create or edit departments"
    MANAGE_KNOWN_ERRORS = "create, edit or test known errors"
    CANCEL_WORK = "cancel queued or running work"
    SEND_REPORTS = "send reports by mail"


_ALL = frozenset(Role)
_STAFF = frozenset({Role.ADMIN, Role.MODERATOR})
_ADMIN = frozenset({Role.ADMIN})

MATRIX: dict[Action, frozenset[Role]] = {
    Action.UPLOAD_FILES: _ALL,
    Action.VIEW_RUNS: _ALL,
    Action.VIEW_ISSUES: _ALL,
    Action.VIEW_REPORTS: _ALL,
    Action.EXPORT_REPORTS: _ALL,
    Action.MANAGE_ISSUES: _STAFF,
    Action.EDIT_SCHEDULES: _ADMIN,
    Action.RUN_SCHEDULES: _ALL,
    Action.MANAGE_USERS: _ADMIN,
    Action.VIEW_AUDIT: _ADMIN,
    Action.VIEW_ATTENDANCE: _ALL,
    Action.MANAGE_ATTENDANCE: _ADMIN,
    Action.REQUEST_PUNCH: _ALL,
    Action.APPROVE_PUNCHES: _STAFF,
    Action.CORRECT_ATTENDANCE: _STAFF,
    Action.VIEW_SOURCES: _ALL,
    Action.EDIT_SOURCES: _ADMIN,
    Action.RUN_SOURCES: _STAFF,
    Action.EDIT_CALENDAR: _ADMIN,
    Action.MANAGE_DEPARTMENTS: _ADMIN,
    Action.MANAGE_KNOWN_ERRORS: _ADMIN,
    Action.CANCEL_WORK: _STAFF,
    Action.SEND_REPORTS: _STAFF,
}


@dataclass(frozen=True)
class Actor:
    """Who is acting: a signed-in user, or the system itself (daemon, schedules, migrations)."""

    id: int | None
    username: str
    role: Role

    @property
    def is_system(self) -> bool:
        return self.id is None


SYSTEM = Actor(id=None, username="system", role=Role.ADMIN)


def allowed(actor: Actor, action: Action) -> bool:
    return actor.role in MATRIX[action]


def require(actor: Actor, action: Action) -> None:
    """Raise PermissionDenied unless the actor's role may take the action.

    The refusal carries the actor and the action; the unit of work it escapes writes the audit
    row (`Database.unit`), so every refused action is on record without each service doing it.
    """
    if not allowed(actor, action):
        refused = PermissionDenied(f"{actor.username} ({actor.role}) may not {action.value}.")
        refused.actor = actor  # type: ignore[attr-defined]
        refused.action = action  # type: ignore[attr-defined]
        raise refused
