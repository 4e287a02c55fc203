"""Published reports: the CSV and PDF outputs of uploads, listed, previewed and exported.

A report is an upload that reached `published` or `partial` and recorded its report keys; any
host reads them from storage (`report_file`). The
previews (`csv_head`, `pdf_text`) are blocking file reads meant for a worker thread; they are
bounded (rows, pages, characters) so that a huge report never stalls a terminal. Exports go only
into the export folder and are audited (`export_report`, `export_folder`).
"""

from __future__ import annotations

import asyncio
import csv
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core import audit
from batchops_core.enums import UploadStatus
from batchops_core.errors import NotFound
from batchops_core.infra.config import Settings
from batchops_core.infra.db import UnitOfWork
from batchops_core.models import Department, Upload
from batchops_core.permissions import Action, Actor, require
from batchops_core.services.export_folder import copy_into, export_target
from batchops_core.services.pagination import Page, text_search
from batchops_core.storage import StorageError, open_store

REPORT_STATUSES = (UploadStatus.PUBLISHED, UploadStatus.PARTIAL)


class ReportFormat(StrEnum):
    CSV = "csv"
    PDF = "pdf"
    FIXLIST = "fixlist"
    """The rows that failed validation, with what to fix."""


@dataclass(frozen=True)
class ReportRow:
    upload_id: int
    filename: str
    department: str
    status: UploadStatus
    rows_out: int | None
    rows_quarantined: int | None
    published_at: datetime | None
    report_csv: str | None
    report_pdf: str | None


@dataclass(frozen=True)
class ReportDetail:
    row: ReportRow
    summary: dict[str, Any]
    fixlist_csv: str | None


def _report_query() -> Any:
    return (
        select(
            Upload.id,
            Upload.filename,
            Department.name,
            Upload.status,
            Upload.rows_out,
            Upload.rows_quarantined,
            Upload.published_at,
            Upload.report_csv,
            Upload.report_pdf,
        )
        .outerjoin(Department, Department.id == Upload.department_id)
        .where(
            Upload.status.in_(REPORT_STATUSES),
            or_(Upload.report_csv.is_not(None), Upload.report_pdf.is_not(None)),
        )
    )


def _row(r: Any) -> ReportRow:
    return ReportRow(
        upload_id=r[0],
        filename=r[1],
        department=r[2] or "",
        status=UploadStatus(r[3]),
        rows_out=r[4],
        rows_quarantined=r[5],
        published_at=r[6],
        report_csv=r[7],
        report_pdf=r[8],
    )


async def list_reports(
    session: AsyncSession,
    *,
    actor: Actor,
    search: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[ReportRow]:
    """Newest first; `search` matches the file name or the department."""
    require(actor, Action.VIEW_REPORTS)
    query = _report_query()
    matches = text_search(search, Upload.filename, Department.name)
    if matches is not None:
        query = query.where(matches)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.execute(
        query.order_by(Upload.published_at.desc(), Upload.id.desc()).offset(offset).limit(limit)
    )
    return Page(items=[_row(r) for r in rows], total=total or 0, offset=offset, limit=limit)


async def get_report(session: AsyncSession, *, actor: Actor, upload_id: int) -> ReportDetail:
    require(actor, Action.VIEW_REPORTS)
    row = (await session.execute(_report_query().where(Upload.id == upload_id))).first()
    if row is None:
        raise NotFound(f"upload #{upload_id} has no published report.")
    extra = (
        await session.execute(
            select(Upload.summary, Upload.fixlist_csv).where(Upload.id == upload_id)
        )
    ).one()
    return ReportDetail(row=_row(row), summary=extra.summary or {}, fixlist_csv=extra.fixlist_csv)


def report_key(detail: ReportDetail, fmt: ReportFormat) -> str:
    """The storage key of one of the report's files, or NotFound."""
    key = {
        ReportFormat.CSV: detail.row.report_csv,
        ReportFormat.PDF: detail.row.report_pdf,
        ReportFormat.FIXLIST: detail.fixlist_csv,
    }[fmt]
    if not key:
        raise NotFound(f"upload #{detail.row.upload_id} has no {fmt.value.upper()} report.")
    return key


async def report_file(settings: Settings, detail: ReportDetail, fmt: ReportFormat) -> Path:
    """A local file holding the report (the stored file itself on the local backend, else a
    copy in this host's scratch): what previews, exports and mail read, on any host."""
    key = report_key(detail, fmt)
    try:
        return await open_store(settings).local_copy(key, settings.scratch_path / "reports")
    except StorageError as exc:
        raise NotFound(
            f"the {fmt.value.upper()} report {key} cannot be read from storage: {exc}. "
            f"{exc.hint} Restore it from a backup, or process the upload again."
        ) from None


@dataclass(frozen=True)
class ExportedReport:
    upload_id: int
    format: ReportFormat
    path: Path
    replaced: bool
    size: int


async def export_report(
    uow: UnitOfWork,
    *,
    actor: Actor,
    upload_id: int,
    fmt: ReportFormat | str,
    destination: str | Path | None = None,
    force: bool = False,
) -> ExportedReport:
    """Copy a report (CSV, PDF or fix-list) into the export folder, and audit it.

    `destination` is a file or folder inside the configured export folder (relative paths are
    taken inside it; None means the folder itself). Anything outside it, inside the data
    directory or through a symlink is refused, and an existing file is replaced only with
    `force=True` (`--force`, the TUI's confirmation). See `export_folder`.
    """
    require(actor, Action.EXPORT_REPORTS)
    kind = ReportFormat(fmt)
    detail = await get_report(uow, actor=actor, upload_id=upload_id)
    settings = uow.settings
    source = await report_file(settings, detail, kind)
    target = await asyncio.to_thread(export_target, settings, destination, source.name)
    done = await asyncio.to_thread(copy_into, source, target, force=force)
    audit.record(
        uow,
        actor=actor,
        action="report.export",
        target_type="upload",
        target_id=upload_id,
        target_name=detail.row.filename,
        detail=f"{kind.value} -> {done.path}" + (" (replaced)" if done.replaced else ""),
    )
    return ExportedReport(upload_id, kind, done.path, done.replaced, done.size)


def csv_head(path: Path, rows: int = 50) -> tuple[list[str], list[list[str]]]:
    """The header and first rows of a CSV report. Blocking."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        body = [row for _, row in zip(range(rows), reader, strict=False)]
    return header, body


def pdf_text(path: Path, pages: int = 3, max_chars: int = 20_000) -> str:
    """The text of the first pages of a PDF report (pdfplumber is slow: keep `pages` small)."""
    import pdfplumber

    parts = []
    with pdfplumber.open(path) as pdf:
        for page in pdf.pages[:pages]:
            parts.append(page.extract_text() or "")
            if sum(map(len, parts)) >= max_chars:
                break
        total = len(pdf.pages)
    text = "\n\n".join(parts)[:max_chars]
    if total > pages:
        text += f"\n\n… {total - pages} more page(s); export the PDF to read it all."
    return text
