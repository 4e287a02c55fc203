"""Uploads: intake of a file into storage, and the listings the Intake screen and CLI show.

Intake is where a file crosses into BatchOps, so it is strict about the *path* and lenient about
the *content*: a name with control characters, a `..` component, something that is not a regular
file, or a file over `[pipeline].max_upload_mb` is refused here (`IntakeRejected` with a code,
nothing stored). Everything else is stored and queued; what is wrong inside the file (empty,
binary, encrypted, no table) is the standardize stage's to report, as an incident.

Storing is atomic and shared by every host: the file is streamed into storage (the local folder
or the object store, `batchops_core.storage`) under a fresh key while its sha256 is computed,
*before* the transaction that records the row with that key — a put never holds a database lock.
If the row is not recorded the object is deleted again, and a crash in between leaves an orphan
object that the storage sweep removes; a row never names a key that is not in storage.
A file whose sha256 was already published (or partially published) from the same source is
recorded as `duplicate` of that upload and not processed again.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import func, select

from batchops_core import audit
from batchops_core.enums import ProcessMode, Stage, UploadStatus
from batchops_core.errors import NotFound, ValidationFailed
from batchops_core.infra import events
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database, UnitOfWork
from batchops_core.models import Department, Upload
from batchops_core.permissions import Action, Actor, require
from batchops_core.services.pagination import Page, page_window, text_search
from batchops_core.storage import StorageError, new_upload_key, open_store

if TYPE_CHECKING:
    from batchops_core.pipeline.plans import Plan

MANUAL = "manual"
log = logging.getLogger(__name__)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


class IntakeRejected(ValidationFailed):
    """A file refused at intake; `code` is one of BAD_PATH, FILE_TOO_LARGE, PLAN_INVALID,
    STORAGE_UNAVAILABLE (the store refused or could not be reached; nothing recorded)."""

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
        return self.status.is_final

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


# ------------------------------------------------------------------------------------ intake


async def _department(session: UnitOfWork, source: str) -> tuple[str, int | None]:
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
    if not row.active:
        raise ValidationFailed(
            f"the department {row.name} is deactivated and takes no new files; an admin can "
            f"activate it again (batchops department activate '{row.name}')."
        )
    return row.name, row.id


class Enqueuer(Protocol):
    """What intake needs of a dispatcher: queue one upload for the pipeline."""

    async def process_upload(self, upload_id: int, *, job_id: str | None = None) -> str | None: ...


@dataclass(frozen=True)
class Submitted:
    """One file's fate at intake: its upload, or why it was refused (nothing stored)."""

    path: str
    upload: UploadInfo | None = None
    rejected: IntakeRejected | None = None


@dataclass(frozen=True)
class StagedFile:
    """A file already in storage under `key`, with its sha256, not yet an upload."""

    name: str
    key: str
    sha256: str
    size: int


async def discard_staged(settings: Settings, staged: StagedFile) -> None:
    """Remove a staged object no row was recorded for (best effort: the sweep is the backstop)."""
    try:
        await open_store(settings).delete(staged.key)
    except StorageError as exc:
        log.warning("staged %s stays in storage until the sweep: %s", staged.key, exc)


def check_plan(plan_mode: ProcessMode | str, plan_config: dict[str, Any] | None) -> Plan:
    """The parsed plan, or IntakeRejected(PLAN_INVALID) naming the bad field."""
    # Imported here: the plans module brings pandas (~0.7 s), which the TUI's start must not pay.
    from batchops_core.pipeline.errors import StageError
    from batchops_core.pipeline.plans import parse_plan

    try:
        return parse_plan(plan_mode, plan_config or {})
    except StageError as exc:
        raise IntakeRejected("PLAN_INVALID", f"the plan is not valid: {exc.message}") from None


async def submit(
    db: Database,
    dispatcher: Enqueuer | None,
    *,
    actor: Actor,
    files: Sequence[Path | str],
    source: str = MANUAL,
    plan_mode: ProcessMode | str = ProcessMode.TRANSFORM,
    plan_config: dict[str, Any] | None = None,
    force: bool = False,
    settings: Settings | None = None,
) -> list[Submitted]:
    """The one way a file becomes an upload: Intake, `batchops upload`, ingests, fetches, sources.

    The plan is checked once (PLAN_INVALID for all), the department once (ValidationFailed);
    each file is then stored and recorded in its own unit of work, and a queued upload is handed
    to `dispatcher` after its commit (None: the caller runs it). A refused file is reported in
    its `Submitted` and nothing of it is kept. `force` processes a duplicate anyway. `settings`
    overrides the database's own (limits, storage) for one call.
    """
    require(actor, Action.UPLOAD_FILES)
    settings = settings or db.settings
    plan = check_plan(plan_mode, plan_config)
    async with db.unit() as uow:
        await _department(uow, source)
    results: list[Submitted] = []
    for raw in files:
        try:
            staged = await stage_file(settings, Path(raw))
        except IntakeRejected as exc:
            results.append(Submitted(str(raw), rejected=exc))
            continue
        try:
            async with db.unit() as uow:
                info = await record_upload(
                    uow,
                    actor=actor,
                    staged=staged,
                    source=source,
                    plan=plan,
                    force=force,
                    dispatcher=dispatcher,
                )
        except BaseException:
            await discard_staged(settings, staged)  # also when the unit failed to begin
            raise
        results.append(Submitted(str(raw), upload=info))
    return results


async def intake_file(
    db: Database,
    settings: Settings,
    actor: Actor,
    path: Path | str,
    *,
    source: str = MANUAL,
    plan_mode: ProcessMode | str = ProcessMode.TRANSFORM,
    plan_config: dict[str, Any] | None = None,
    force: bool = False,
) -> UploadInfo:
    """`submit` for one file, raising its refusal; the caller enqueues (scripts, tests)."""
    [result] = await submit(
        db,
        None,
        actor=actor,
        files=[path],
        source=source,
        plan_mode=plan_mode,
        plan_config=plan_config,
        force=force,
        settings=settings,
    )
    if result.rejected is not None:
        raise result.rejected
    assert result.upload is not None
    return result.upload


async def stage_file(settings: Settings, path: Path, name: str | None = None) -> StagedFile:
    """Check the path and the size, then put the file in storage under a fresh key, hashing."""
    shown = check_name(Path(name) if name else path)
    source_path = path.expanduser()
    if source_path.is_symlink() or not source_path.is_file():
        raise IntakeRejected("BAD_PATH", f"{path} is not a readable regular file.")
    limit = settings.pipeline.max_upload_mb * 1024 * 1024
    size = source_path.stat().st_size
    if size > limit:
        raise IntakeRejected(
            "FILE_TOO_LARGE",
            f"{shown} is {size / 1024**2:,.1f} MB, over the "
            f"{settings.pipeline.max_upload_mb} MB limit; split the file or "
            "raise [pipeline].max_upload_mb.",
        )
    try:
        stored = await open_store(settings).put_file(
            new_upload_key(stored_name(shown)), source_path
        )
    except StorageError as exc:
        raise IntakeRejected(
            "STORAGE_UNAVAILABLE", f"{shown} was not stored: {exc}. {exc.hint}".strip()
        ) from None
    return StagedFile(shown, stored.key, stored.sha256, stored.size)


async def record_upload(
    uow: UnitOfWork,
    *,
    actor: Actor,
    staged: StagedFile,
    source: str,
    plan: Plan,
    dispatcher: Enqueuer | None,
    force: bool = False,
) -> UploadInfo:
    """Add the upload row naming its staged object, in the caller's unit.

    If the unit rolls back, for whatever reason from here on, the object is deleted with it
    (`discard_staged`). A queued upload is enqueued and `upload.updated` published after the
    commit.
    """
    uow.on_rollback(lambda: discard_staged(uow.settings, staged))
    require(actor, Action.UPLOAD_FILES)
    department, department_id = await _department(uow, source)
    previous = None if force else await _published_twin(uow, staged.sha256, department)
    row = Upload(
        filename=staged.name,
        sha256=staged.sha256,
        size_bytes=staged.size,
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
            f"upload #{previous}; not processed again (upload it with --force to process it)."
        )
        if previous
        else None,
        stored_path=staged.key,
    )
    uow.add(row)
    await uow.flush()
    audit.record(
        uow,
        actor=actor,
        action="upload.create",
        target_type="upload",
        target_id=row.id,
        target_name=staged.name,
        detail=f"{staged.size} bytes from {department}, plan {plan.mode.value}"
        + (f", duplicate of #{previous}" if previous else "")
        + (", forced" if force else ""),
    )
    info = UploadInfo.of(row)
    uow.emit(
        events.Event(
            type="upload.updated",
            id=info.id,
            status=info.status.value,
            data={"uploader_id": actor.id} if actor.id is not None else {},
        )
    )
    if dispatcher is not None and info.status is UploadStatus.QUEUED:
        uow.after_commit(lambda: _enqueue(dispatcher, info.id))
    return info


async def _enqueue(dispatcher: Enqueuer, upload_id: int) -> None:
    """Hand a committed upload to the queue; if the queue is down it stays `queued`, where the
    sweeper and `batchops-daemon --once` find it, so intake itself does not fail."""
    try:
        await dispatcher.process_upload(upload_id)
    except Exception as exc:
        log.warning("upload %s stays queued: the queue did not take it (%s)", upload_id, exc)


async def _published_twin(uow: UnitOfWork, sha256: str, department: str) -> int | None:
    """The first published (or partial) upload of the same bytes from the same source."""
    return await uow.scalar(
        select(Upload.id)
        .where(
            Upload.sha256 == sha256,
            Upload.source == department,
            Upload.status.in_([UploadStatus.PUBLISHED, UploadStatus.PARTIAL]),
        )
        .order_by(Upload.id)
        .limit(1)
    )


# ---------------------------------------------------------------------------------- listings


async def list_uploads(
    session: UnitOfWork,
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


async def get_upload(session: UnitOfWork, *, actor: Actor, upload_id: int) -> UploadInfo:
    require(actor, Action.VIEW_RUNS)
    row = await session.get(Upload, upload_id)
    if row is None:
        raise NotFound(f"upload #{upload_id} does not exist.")
    return UploadInfo.of(row)


async def get_uploads(
    session: UnitOfWork, *, actor: Actor, upload_ids: list[int]
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


async def list_departments(session: UnitOfWork, *, actor: Actor) -> list[DepartmentInfo]:
    """Active departments an upload can come from (plus the implicit 'manual')."""
    require(actor, Action.UPLOAD_FILES)
    rows = (
        await session.scalars(
            select(Department).where(Department.active.is_(True)).order_by(Department.name)
        )
    ).all()
    return [DepartmentInfo(r.id, r.name, r.description, r.required_columns) for r in rows]
