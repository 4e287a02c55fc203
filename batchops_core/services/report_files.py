"""The fix-list of a published report: its path for a preview and a copy to a path the operator
chose, beside `reports.export_report` (which knows only the CSV and PDF reports).

Kept in its own module so that `services/reports.py` is left to its owner; blocking file work,
called from thread workers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from batchops_core.errors import NotFound, ValidationFailed
from batchops_core.services.reports import ReportDetail


def fixlist_path(detail: ReportDetail) -> Path:
    """The fix-list CSV (the rows that failed validation, with what to fix) of a report."""
    if not detail.fixlist_csv:
        raise NotFound(f"upload #{detail.row.upload_id} has no fix-list: no row was quarantined.")
    path = Path(detail.fixlist_csv)
    if not path.is_file():
        raise NotFound(f"the fix-list {path} is missing from storage.")
    return path


def export_fixlist(detail: ReportDetail, destination: str | Path) -> Path:
    """Copy the fix-list to a folder (keeping its name) or a file path, atomically."""
    source = fixlist_path(detail)
    target = Path(destination).expanduser()
    if target.is_dir():
        target = target / source.name
    if not target.parent.is_dir():
        raise ValidationFailed(f"the folder {target.parent} does not exist; choose another path.")
    tmp = target.with_name(f".{target.name}.part")
    shutil.copyfile(source, tmp)
    tmp.replace(target)
    return target
