"""Automation tasks: the frame every run goes through, and the bodies, one module per concern.

Importing this package imports every body module, so the catalogue (`registry.AUTOMATIONS`) is
complete for whoever reads it: the schedule form, `batchops schedule`, the runner.
"""

from batchops_core.worker.automation import attendance, ingest, maintenance, retention, sources
from batchops_core.worker.automation.registry import AUTOMATIONS, ArgSpec, TaskSpec

__all__ = [
    "AUTOMATIONS",
    "ArgSpec",
    "TaskSpec",
    "attendance",
    "ingest",
    "maintenance",
    "retention",
    "sources",
]
