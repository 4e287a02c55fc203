"""Attendance: punches to a daily register (rules, processing, corrections, register, services).

`rules.py` holds the pure rules; `processing.py` applies them to whole arrays; the database side
is `models.py` and the service modules, the only door for the TUI, the CLI and the daemon.
"""

from typing import Any

__all__ = ["PunchIn", "add_punches"]


def __getattr__(name: str) -> Any:
    """`from batchops_core.attendance import add_punches, PunchIn` without importing the whole
    domain (numpy, SQLAlchemy models) for callers that only need `rules`."""
    if name == "add_punches":
        from batchops_core.attendance.punches import add_punches

        return add_punches
    if name == "PunchIn":
        from batchops_core.attendance.views import PunchIn

        return PunchIn
    raise AttributeError(f"module 'batchops_core.attendance' has no attribute {name!r}")
