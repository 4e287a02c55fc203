"""Uploads: intake of a file into storage, and the listings the Intake screen and CLI show.

Intake is where a file crosses into BatchOps, so it is strict about the *path* and lenient about
the *content*: a name with control characters, a `..` component, something that is not a regular
file, or a file over `[pipeline].max_upload_mb` is refused here (`IntakeRejected` with a code,
nothing stored). Everything else is stored and queued; what is wrong inside the file (empty,
binary, encrypted, no table) is the standardize stage's to report, as an incident.

Storing is atomic: the file is streamed into `storage/uploads/.incoming/` while its sha256 is
computed, fsynced, and renamed into `storage/uploads/<id>/<safe name>` inside the transaction
that creates the upload row, so there is never a row without its file or a file without a row.
A file whose sha256 was already published (or partially published) from the same source is
recorded as `duplicate` of that upload and not processed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core import audit
from batchops_core.enums import ProcessMode, Stage, UploadStatus
from batchops_core.errors import NotFound, ValidationFailed
from batchops_core.infra import events
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Department, Upload
from batchops_core.permissions import Action, Actor, require
from batchops_core.pipeline.atomic import fsync_dir
from batchops_core.services.pagination import Page, page_window, text_search

FINAL_STATUSES = (
    UploadStatus.PUBLISHED,
    UploadStatus.PARTIAL,
    UploadStatus.FAILED,
    UploadStatus.DUPLICATE,
)
MANUAL = "manual"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


class IntakeRejected(ValidationFailed):
    """A file refused at intake; `code` is one of BAD_PATH, FILE_TOO_LARGE, PLAN_INVALID."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class UploadInfo:
    id: int
    filename: str
    status: UploadStatus
    source: str
    current_stage: Stage | None
    process_mode: ProcessMode
    attempt: int
    size_bytes: int
    sha256: str
    rows_in: int | None
    rows_out: int | None
    rows_quarantined: int | None
    report_csv: str | None
    report_pdf: str | None
    fixlist_csv: str | None
    fixlist_xlsx: str | None
    error_code: str | None
    error_message: str | None
    duplicate_of_id: int | None
    uploader_id: int | None
    created_at: datetime
    published_at: datetime | None

    @classmethod
    def of(cls, row: Upload) -> UploadInfo:
        return cls(
            id=row.id,
            filename=row.filename,
            status=UploadStatus(row.status),
            source=row.source,
            current_stage=row.current_stage,
            process_mode=ProcessMode(row.process_mode),
            attempt=row.attempt,
            size_bytes=row.size_bytes,
            sha256=row.sha256,
            rows_in=row.rows_in,
            rows_out=row.rows_out,
            rows_quarantined=row.rows_quarantined,
            report_csv=row.report_csv,
            report_pdf=row.report_pdf,
            fixlist_csv=row.fixlist_csv,
            fixlist_xlsx=row.fixlist_xlsx,
            error_code=row.error_code,
            error_message=row.error_message,
            duplicate_of_id=row.duplicate_of_id,
            uploader_id=row.uploader_id,
            created_at=row.created_at,
            published_at=row.published_at,
        )

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES

    def as_json(self) -> dict[str, Any]:
        """The fields `batchops upload --json` prints per upload."""
        return {
            "id": self.id,
            "filename": self.filename,
            "status": self.status.value,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "report_csv": self.report_csv,
            "report_pdf": self.report_pdf,
            "error_code": self.error_code,
            "error_message": self.error_message,
        }


@dataclass(frozen=True)
class DepartmentInfo:
    id: int
    name: str
    description: str
    required_columns: list[str] | None


# ------------------------------------------------------------------------------------- names


def check_name(path: Path) -> str:
    """The display name of a file to upload, or IntakeRejected(BAD_PATH)."""
    raw = str(path)
    if _CONTROL.search(raw):
        shown = _CONTROL.sub("?", raw)
        raise IntakeRejected(
            "BAD_PATH",
            f"the path {shown!r} contains control characters; rename the file before uploading it.",
        )
    if ".." in Path(raw).parts:
        raise IntakeRejected(
            "BAD_PATH",
            f"the path {raw!r} contains '..'; give the file's "
            "own path without parent-directory steps.",
        )
    name = path.name.strip()
    if not name or name in {".", ".."}:
        raise IntakeRejected("BAD_PATH", f"{raw!r} does not name a file.")
    return unicodedata.normalize("NFC", name)[:255]


def stored_name(name: str) -> str:
    """A name safe on any filesystem, keeping the extension the pipeline reads the type from."""
    path = Path(name)
    stem = unicodedata.normalize("NFKD", path.stem).encode("ascii", "ignore").decode("ascii")
    stem = _UNSAFE.sub("_", stem).strip(" ._-")[:100] or "upload"
    suffix = _UNSAFE.sub("", path.suffix.lower())[:10]
    return f"{stem}{suffix}"


def _copy_hashing(source: Path, target: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    return digest.hexdigest(), size


# ------------------------------------------------------------------------------------ intake


async def _department(session: AsyncSession, source: str) -> tuple[str, int | None]:
    if source.strip().lower() in {"", MANUAL}:
        return MANUAL, None
    row = await session.scalar(
        select(Department).where(func.lower(Department.name) == source.strip().lower())
    )
    if row is None:
        names = (await session.scalars(select(Department.name).order_by(Department.name))).all()
        raise ValidationFailed(
            f"unknown department {source!r}; use one of: {', '.join(names)} (or 'manual')."
        )
    return row.name, row.id


async def intake_file(
    db: Database,
    settings: Settings,
    actor: Actor,
    path: Path | str,
    *,
    source: str = MANUAL,
    plan_mode: ProcessMode | str = ProcessMode.TRANSFORM,
    plan_config: dict[str, Any] | None = None,
) -> UploadInfo:
    """Store one file and record it as `queued` (or `duplicate`); the caller enqueues it."""
    require(actor, Action.UPLOAD_FILES)
    from batchops_core.pipeline.errors import StageError
    from batchops_core.pipeline.plans import parse_plan

    try:
        plan = parse_plan(plan_mode, plan_config or {})
    except StageError as exc:
        raise IntakeRejected("PLAN_INVALID", f"the plan is not valid: {exc.message}") from None
    path = Path(path)
    name = check_name(path)
    source_path = path.expanduser()
    if not source_path.is_file():
        raise IntakeRejected("BAD_PATH", f"{path} is not a readable file.")
    limit = settings.pipeline.max_upload_mb * 1024 * 1024
    size = source_path.stat().st_size
    if size > limit:
        raise IntakeRejected(
            "FILE_TOO_LARGE",
            f"{name} is {size / 1024**2:,.1f} MB, over the "
            f"{settings.pipeline.max_upload_mb} MB limit; split the file or "
            "raise [pipeline].max_upload_mb.",
        )
    uploads_root = settings.storage_path / "uploads"
    incoming = uploads_root / ".incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    temp = incoming / f"{uuid.uuid4().hex}.part"
    try:
        sha256, size = await asyncio.to_thread(_copy_hashing, source_path, temp)
        return await _record(db, settings, actor, temp, name, sha256, size, source, plan)
    finally:
        temp.unlink(missing_ok=True)


async def _record(
    db: Database,
    settings: Settings,
    actor: Actor,
    temp: Path,
    name: str,
    sha256: str,
    size: int,
    source: str,
    plan: Any,
) -> UploadInfo:
    moved_to: Path | None = None
    try:
        async with db.unit() as session:
            department, department_id = await _department(session, source)
            previous = await session.scalar(
                select(Upload.id)
                .where(
                    Upload.sha256 == sha256,
                    Upload.source == department,
                    Upload.status.in_([UploadStatus.PUBLISHED, UploadStatus.PARTIAL]),
                )
                .order_by(Upload.id)
                .limit(1)
            )
            row = Upload(
                filename=name,
                sha256=sha256,
                size_bytes=size,
                source=department,
                department_id=department_id,
                uploader_id=actor.id,
                status=UploadStatus.DUPLICATE if previous else UploadStatus.QUEUED,
                process_mode=plan.mode,
                process_config=dict(plan.config),
                duplicate_of_id=previous,
                error_code="DUPLICATE" if previous else None,
                error_message=(
                    f"the same file was already published from {department} as "
                    f"upload #{previous}; not processed again."
                )
                if previous
                else None,
            )
            session.add(row)
            await session.flush()
            folder = settings.storage_path / "uploads" / str(row.id)
            folder.mkdir(parents=True, exist_ok=True)
            moved_to = folder / stored_name(name)
            os.replace(temp, moved_to)
            fsync_dir(folder)
            row.stored_path = str(moved_to)
            audit.record(
                session,
                actor=actor,
                action="upload.create",
                target_type="upload",
                target_id=row.id,
                target_name=name,
                detail=f"{size} bytes from {department}, plan {plan.mode.value}"
                + (f", duplicate of #{previous}" if previous else ""),
            )
            info = UploadInfo.of(row)
    except BaseException:
        if moved_to is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(moved_to.parent)
        raise
    await events.publish(
        settings,
        events.Event(
            type="upload.updated",
            id=info.id,
            status=info.status.value,
            data={"uploader_id": actor.id} if actor.id is not None else {},
        ),
    )
    return info


# ---------------------------------------------------------------------------------- listings


async def list_uploads(
    session: AsyncSession,
    *,
    actor: Actor,
    offset: int = 0,
    limit: int = 50,
    search: str | None = None,
    status: UploadStatus | str | None = None,
) -> Page[UploadInfo]:
    """Newest first; `search` matches the file name, source or error code; `status` filters."""
    require(actor, Action.VIEW_RUNS)
    offset, limit = page_window(offset, limit)
    query = select(Upload)
    matches = text_search(search, Upload.filename, Upload.source, Upload.error_code)
    if matches is not None:
        query = query.where(matches)
    if status:
        query = query.where(Upload.status == UploadStatus(status))
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = (
        await session.scalars(
            query.order_by(Upload.created_at.desc(), Upload.id.desc())
            .offset(max(0, offset))
            .limit(limit)
        )
    ).all()
    return Page([UploadInfo.of(r) for r in rows], int(total), max(0, offset), limit)


async def get_upload(session: AsyncSession, *, actor: Actor, upload_id: int) -> UploadInfo:
    require(actor, Action.VIEW_RUNS)
    row = await session.get(Upload, upload_id)
    if row is None:
        raise NotFound(f"upload #{upload_id} does not exist.")
    return UploadInfo.of(row)


async def get_uploads(
    session: AsyncSession, *, actor: Actor, upload_ids: list[int]
) -> list[UploadInfo]:
    """Several uploads by id, in the order asked (missing ids are left out)."""
    require(actor, Action.VIEW_RUNS)
    if not upload_ids:
        return []
    rows = {
        r.id: r
        for r in (await session.scalars(select(Upload).where(Upload.id.in_(upload_ids)))).all()
    }
    return [UploadInfo.of(rows[i]) for i in upload_ids if i in rows]


async def list_departments(session: AsyncSession, *, actor: Actor) -> list[DepartmentInfo]:
    """Active departments an upload can come from (plus the implicit 'manual')."""
    require(actor, Action.UPLOAD_FILES)
    rows = (
        await session.scalars(
            select(Department).where(Department.active.is_(True)).order_by(Department.name)
        )
    ).all()
    return [DepartmentInfo(r.id, r.name, r.description, r.required_columns) for r in rows]
