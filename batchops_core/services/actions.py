"""Everyday actions: cancel an upload or a run, process a file again, delete a schedule.

**Cancel** keeps the runner's claim contract (`pipeline/runner.py`): every write of a runner is
conditional on `status = 'processing' AND attempt = :mine`. So cancelling is one conditional
UPDATE of the upload to `cancelled` — from `queued` (no worker will claim it: only `queued` is
claimable) or from `processing` (the runner's next write at the stage boundary finds nothing and
stops without publishing; the stage in flight finishes in its pool process and its result is
dropped). The running JobRun is closed as `cancelled` in the same transaction, so the sweeper
never mistakes it for lost work. A running automation run is marked `cancelled` the same way; its
frame watches the row and stops the body (`worker/automation/frame.py`).
Staff may cancel anything (`CANCEL_WORK`); anyone may cancel their own upload.

**Process again** re-submits a stored upload's file with a new plan through the one intake path
(`uploads.submit`) with `force=True`, so a duplicate of a published file is processed anyway,
and the new upload is audited as a re-processing of the old one.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from batchops_core import audit
from batchops_core.enums import ProcessMode, RunKind, RunStatus, StepStatus, UploadStatus
from batchops_core.errors import NotFound, PermissionDenied
from batchops_core.incidents import InvalidTransition
from batchops_core.infra import events
from batchops_core.infra.clock import utcnow
from batchops_core.infra.db import Database, UnitOfWork
from batchops_core.models import Job, JobRun, JobRunStep, Upload
from batchops_core.permissions import Action, Actor, allowed, require
from batchops_core.services.uploads import Enqueuer, UploadInfo, submit
from batchops_core.storage import StorageError, open_store

CANCELLED = "CANCELLED"
CANCELLABLE = (UploadStatus.QUEUED, UploadStatus.PROCESSING)


@dataclass(frozen=True)
class Cancelled:
    """What a cancel did: the upload and/or run now recorded `cancelled`."""

    upload_id: int | None
    run_id: int | None
    was: str
    """`queued`, `processing` or `running`: where the work was stopped."""

    def as_json(self) -> dict[str, Any]:
        return {"upload_id": self.upload_id, "run_id": self.run_id, "was": self.was}


def _who(actor: Actor, reason: str) -> str:
    return f"cancelled by {actor.username}" + (f": {reason.strip()}" if reason.strip() else "")


async def _close_runs(uow: UnitOfWork, condition: Any, message: str) -> list[int]:
    """Mark running runs matching `condition` cancelled, their open steps skipped."""
    ids = list(
        await uow.scalars(select(JobRun.id).where(condition, JobRun.status == RunStatus.RUNNING))
    )
    if not ids:
        return []
    now = utcnow()
    await uow.execute(
        update(JobRun)
        .where(JobRun.id.in_(ids), JobRun.status == RunStatus.RUNNING)
        .values(
            status=RunStatus.CANCELLED,
            finished_at=now,
            error_code=CANCELLED,
            error_message=message,
        )
        .execution_options(synchronize_session=False)
    )
    await uow.execute(
        update(JobRunStep)
        .where(
            JobRunStep.run_id.in_(ids),
            JobRunStep.status.in_((StepStatus.PENDING, StepStatus.RUNNING)),
        )
        .values(status=StepStatus.SKIPPED)
        .execution_options(synchronize_session=False)
    )
    for run_id in ids:
        uow.emit(events.Event(type="run.updated", id=run_id, status=RunStatus.CANCELLED.value))
    return ids


async def cancel_upload(
    uow: UnitOfWork, *, actor: Actor, upload_id: int, reason: str = ""
) -> Cancelled:
    """Stop a queued or processing upload and record it `cancelled` (see the module docstring)."""
    require(actor, Action.VIEW_RUNS)
    upload = await uow.get(Upload, upload_id)
    if upload is None:
        raise NotFound(f"upload #{upload_id} does not exist.")
    if not allowed(actor, Action.CANCEL_WORK) and upload.uploader_id != actor.id:
        raise PermissionDenied(
            f"{actor.username} ({actor.role}) may cancel only their own uploads; "
            f"upload #{upload_id} is someone else's."
        )
    was, filename = UploadStatus(upload.status), upload.filename
    message = _who(actor, reason)
    moved = await uow.execute(
        update(Upload)
        .where(Upload.id == upload_id, Upload.status == was, Upload.status.in_(CANCELLABLE))
        .values(
            status=UploadStatus.CANCELLED,
            error_code=CANCELLED,
            error_message=message,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    if not moved.rowcount:  # type: ignore[attr-defined]
        raise InvalidTransition(
            f"upload #{upload_id} is {was.value}; only a queued or processing upload can be "
            "cancelled."
        )
    uow.expire(upload)
    runs = await _close_runs(uow, JobRun.upload_id == upload_id, message)
    audit.record(
        uow,
        actor=actor,
        action="upload.cancel",
        target_type="upload",
        target_id=upload_id,
        target_name=filename,
        detail=f"was {was.value}" + (f"; {reason.strip()}" if reason.strip() else ""),
    )
    uow.emit(events.Event(type="upload.updated", id=upload_id, status=UploadStatus.CANCELLED.value))
    return Cancelled(upload_id, runs[0] if runs else None, was.value)


async def cancel_run(uow: UnitOfWork, *, actor: Actor, run_id: int, reason: str = "") -> Cancelled:
    """Cancel a run: a pipeline run cancels its upload; an automation run is marked cancelled
    and its frame stops the task body."""
    require(actor, Action.VIEW_RUNS)
    run = await uow.get(JobRun, run_id)
    if run is None:
        raise NotFound(f"there is no run #{run_id}.")
    if run.kind is RunKind.PIPELINE and run.upload_id is not None:
        upload = await uow.get(Upload, run.upload_id)
        if upload is not None and upload.status in CANCELLABLE:
            return await cancel_upload(uow, actor=actor, upload_id=upload.id, reason=reason)
    require(actor, Action.CANCEL_WORK)
    if run.status is not RunStatus.RUNNING and run.status is not RunStatus.QUEUED:
        raise InvalidTransition(
            f"run #{run_id} is {run.status.value}; only a queued or running run can be cancelled."
        )
    was, task = run.status.value, run.task
    message = _who(actor, reason)
    await uow.execute(
        update(JobRun)
        .where(JobRun.id == run_id, JobRun.status == RunStatus.QUEUED)
        .values(status=RunStatus.RUNNING)
        .execution_options(synchronize_session=False)
    )
    closed = await _close_runs(uow, JobRun.id == run_id, message)
    if not closed:
        raise InvalidTransition(f"run #{run_id} finished meanwhile; nothing to cancel.")
    uow.expire(run)
    audit.record(
        uow,
        actor=actor,
        action="run.cancel",
        target_type="run",
        target_id=run_id,
        target_name=task,
        detail=f"was {was}" + (f"; {reason.strip()}" if reason.strip() else ""),
    )
    return Cancelled(None, run_id, was)


# ---------------------------------------------------------------------------- process again


async def process_again(
    db: Database,
    dispatcher: Enqueuer | None,
    *,
    actor: Actor,
    upload_id: int,
    plan_mode: ProcessMode | str | None = None,
    plan_config: dict[str, Any] | None = None,
) -> UploadInfo:
    """Submit a finished upload's stored file again with `plan_mode`/`plan_config` (default:
    its own plan) and `force=True`; returns the new upload. The old one is left as it is."""
    require(actor, Action.UPLOAD_FILES)
    async with db.unit() as uow:
        upload = await uow.get(Upload, upload_id)
        if upload is None:
            raise NotFound(f"upload #{upload_id} does not exist.")
        if not UploadStatus(upload.status).is_final:
            raise InvalidTransition(
                f"upload #{upload_id} is still {upload.status.value}; wait for it to finish or "
                "cancel it first."
            )
        key, sha256 = upload.stored_path, upload.sha256
        filename, source = upload.filename, upload.source
        mode = plan_mode or upload.process_mode
        own = dict(upload.process_config or {}) if plan_mode is None else {}
        config = own if plan_config is None else dict(plan_config)
    scratch = db.settings.scratch_path / "again" / uuid.uuid4().hex
    try:
        try:
            copy = await open_store(db.settings).fetch(key, scratch / filename, sha256=sha256)
        except StorageError as exc:
            raise NotFound(
                f"the file of upload #{upload_id} cannot be read from storage: {exc}. {exc.hint}"
            ) from None
        [result] = await submit(
            db,
            dispatcher,
            actor=actor,
            files=[copy],
            source=source,
            plan_mode=mode,
            plan_config=config,
            force=True,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if result.rejected is not None:
        raise result.rejected
    assert result.upload is not None
    async with db.unit() as uow:
        audit.record(
            uow,
            actor=actor,
            action="upload.process_again",
            target_type="upload",
            target_id=result.upload.id,
            target_name=filename,
            detail=f"again from upload #{upload_id} with plan {result.upload.process_mode.value}",
        )
    return result.upload


# --------------------------------------------------------------------------------- schedules


async def delete_schedule(uow: UnitOfWork, *, actor: Actor, ref: int | str) -> str:
    """Delete a schedule by id or name; its past runs and incidents stay (their link is
    cleared). Returns the deleted schedule's name."""
    from batchops_core.services.schedules import find_schedule

    require(actor, Action.EDIT_SCHEDULES)
    found = await find_schedule(uow, actor=actor, ref=str(ref))
    job = await uow.get(Job, found.id)
    assert job is not None
    await uow.delete(job)
    await uow.flush()
    audit.record(
        uow,
        actor=actor,
        action="schedule.delete",
        target_type="schedule",
        target_id=found.id,
        target_name=found.name,
        detail=f"{found.task} '{found.cron}' {found.timezone} {found.arguments}",
    )
    uow.emit(events.Event(type="schedule.updated", id=found.id, status="deleted"))
    return found.name
