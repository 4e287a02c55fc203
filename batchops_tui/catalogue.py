"""The six main screens, in key order: one list feeds the key bindings, the palette and the help.

Screen classes are imported lazily by name so that a cold start only loads the sign-in screen.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from textual.screen import Screen


@dataclass(frozen=True)
class ScreenSpec:
    key: str
    mode: str
    title: str
    module: str
    cls: str
    help: str

    def load(self) -> type[Screen]:
        return getattr(importlib.import_module(f"batchops_tui.screens.{self.module}"), self.cls)


SCREENS: tuple[ScreenSpec, ...] = (
    ScreenSpec("1", "home", "Home", "home", "HomeScreen", "KPIs, worker health, next schedules"),
    ScreenSpec("2", "intake", "Intake", "intake", "IntakeScreen", "upload files with a plan"),
    ScreenSpec("3", "runs", "Runs", "runs", "RunsScreen", "run history, stages, logs, rerun"),
    ScreenSpec("4", "issues", "Issues", "issues", "IssuesScreen", "incident queue and RCA"),
    ScreenSpec("5", "reports", "Reports", "reports", "ReportsScreen", "published reports"),
    ScreenSpec("6", "schedules", "Schedules", "schedules", "SchedulesScreen", "cron jobs"),
    ScreenSpec(
        "7", "sources", "Sources", "sources", "SourcesScreen", "external data, missing days"
    ),
    ScreenSpec("8", "attendance", "Attendance", "attendance", "AttendanceScreen", "punches, days"),
)
ADMIN_SCREENS: tuple[ScreenSpec, ...] = (
    ScreenSpec("u", "users", "Users", "users", "UsersScreen", "user administration (admins)"),
    ScreenSpec(
        "D", "departments", "Departments", "departments", "DepartmentsScreen", "feeds, profiles"
    ),
    ScreenSpec(
        "K", "known_errors", "Known errors", "known_errors", "KnownErrorsScreen", "error patterns"
    ),
)
ALL_SCREENS = SCREENS + ADMIN_SCREENS
BY_MODE = {s.mode: s for s in ALL_SCREENS}
