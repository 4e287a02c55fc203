"""Copy a report's CSV, PDF or fix-list to a path an operator chose, safely.

Two refusals protect what BatchOps keeps: an existing file is not overwritten unless the caller
says `force` (a script re-run must not silently replace yesterday's export), and no path inside
the data directory is accepted (an export there could replace a stored upload, a report or the
SQLite database itself). A folder keeps the report's own file name. The copy is atomic: a
`.part` file renamed into place, so a reader never sees half a file. Blocking: call it from a
thread in a screen.
"""

from __future__ import annotations

import shutil
from enum import StrEnum
from pathlib import Path

from batchops_core.errors import ValidationFailed
from batchops_core.infra.config import Settings
from batchops_core.services.report_files import fixlist_path
from batchops_core.services.reports import ReportDetail, ReportFormat, report_path


class ExportFormat(StrEnum):
    CSV = "csv"
    PDF = "pdf"
    FIXLIST = "fixlist"


def source_of(detail: ReportDetail, fmt: ExportFormat | str) -> Path:
    chosen = ExportFormat(str(fmt).lower())
    if chosen is ExportFormat.FIXLIST:
        return fixlist_path(detail)
    return report_path(detail, ReportFormat(chosen.value))


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def target_for(settings: Settings, source: Path, destination: str | Path, *, force: bool) -> Path:
    """Where the copy goes, or ValidationFailed saying why not (nothing written)."""
    target = Path(destination).expanduser()
    if target.is_dir():
        target = target / source.name
    target = target.resolve()
    data = settings.data_path.expanduser().resolve()
    if _inside(target, data):
        raise ValidationFailed(
            f"{target} is inside the data directory {data}; export somewhere else (BatchOps keeps "
            "its uploads, reports and database there)."
        )
    if not target.parent.is_dir():
        raise ValidationFailed(f"the folder {target.parent} does not exist; choose another path.")
    if target.exists() and not force:
        raise ValidationFailed(f"{target} already exists; choose another name, or use --force.")
    return target


def export_file(
    settings: Settings,
    detail: ReportDetail,
    fmt: ExportFormat | str,
    destination: str | Path,
    *,
    force: bool = False,
) -> Path:
    """Copy the report's `fmt` file to `destination` (see the module docstring)."""
    source = source_of(detail, fmt)
    target = target_for(settings, source, destination, force=force)
    tmp = target.with_name(f".{target.name}.part")
    try:
        shutil.copyfile(source, tmp)
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ValidationFailed(f"cannot write {target}: {exc.strerror or exc}.") from None
    return target
