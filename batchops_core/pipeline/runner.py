"""Run the five stages of one upload: claim it, record every step, publish only once.

Concurrency contract (arq is at-least-once and a timed-out job can run twice at the same time):

* The upload is *claimed* by a conditional UPDATE (`status = queued` → `processing`,
  `attempt + 1`). A second runner finds nothing to claim and returns without work.
* Every later write to the upload is conditional on `status = 'processing' AND attempt = :mine`.
  A runner that lost the upload meanwhile (the sweeper gave it to another worker) stops at its
  next step and never publishes.
* Stages are idempotent: they write into this host's `scratch/work/<id>/` by atomic rename under
  fixed names; publish puts the reports in storage under fixed keys `exports/<id>/…` (one atomic
  put each, `scratch.py`) before the conditional UPDATE names them, so a re-run overwrites the
  same objects and a crash leaves the old object or the new one — never half a report, and never
  a key the database names without its object.
* Every host reads the upload from shared storage (`scratch.materialize`): a rerun from a failed
  stage on a host without the earlier stages' scratch starts again from standardize.

Each stage runs in a warm pool process leased to this upload (`isolation.py`, `pool.py`) under
the `[pipeline]` parse limits; each step is written in its own short transaction and announced
with an `upload.updated` event carrying the stage. A `StageError` fails the upload and its run and
becomes an incident through `incidents.record_stage_failure` — so does the death of the upload's
process (PARSE_CRASHED), which touches no other upload. A cancelled run (the job timeout) kills
its process, so the work stops with the job.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core.enums import (
    STAGES,
    ProcessMode,
    RunKind,
    RunStatus,
    Stage,
    StepStatus,
    UploadStatus,
)
from batchops_core.incidents import FailureInfo, record_stage_failure
from batchops_core.infra import events
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Department, JobRun, JobRunStep, Upload, User
from batchops_core.pipeline import scratch
from batchops_core.pipeline.errors import StageError
from batchops_core.pipeline.isolation import run_stage_isolated
from batchops_core.pipeline.limits import ParseLimits
from batchops_core.pipeline.profile import ValidationProfile
from batchops_core.pipeline.stages import StageContext, StageOutcome, make_context

log = logging.getLogger(__name__)
CLAIMABLE = (UploadStatus.QUEUED,)
"""Only queued uploads are claimed: every retry path (incident retry, rerun, remediation, the
sweeper) puts the upload back to `queued` first, so a second delivery of a job after a data
failure finds nothing to claim instead of re-running a bad file blindly."""


def incident_source(source: str, filename: str) -> str:
    """The incident de-duplication source: the department feed, or the file for manual uploads.

    Two different files handed in by hand are different problems; the same department feed
    failing the same way again is one incident with several occurrences.
    """
    return f"manual:{filename}" if source == "manual" else source


TASK_NAME = "process_upload"
SUPERSEDED = "SUPERSEDED"


@dataclass
class RunOutcome:
    """What one call of `run_upload` did; `as_dict()` is the task's JSON result."""

    upload_id: int
    status: str
    succeeded: bool
    run_id: int | None = None
    attempt: int | None = None
    claimed: bool = True
    stage: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    incident_id: int | None = None
    report_csv: str | None = None
    report_pdf: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Lost(Exception):
    """The upload is no longer ours (another attempt owns it); stop quietly."""


async def run_upload(
    db: Database,
    settings: Settings,
    upload_id: int,
    *,
    worker: str,
    from_stage: Stage | None = None,
) -> RunOutcome:
    """Claim and process one upload; see the module docstring for the guarantees."""
    claim = await _claim(db, settings, upload_id, worker=worker, from_stage=from_stage)
    if isinstance(claim, RunOutcome):
        return claim
    ctx, run_id, attempt, start = claim
    limits = ParseLimits.of(settings.pipeline)
    await _event(settings, upload_id, UploadStatus.PROCESSING, STAGES[start])
    stage = STAGES[start]
    try:
        outcome: StageOutcome | None = None
        for stage in STAGES[start:]:
            await _step_started(db, upload_id, run_id, attempt, stage)
            started = utcnow()
            if stage is Stage.STANDARDIZE:
                ctx = await scratch.materialize(settings, ctx)
            outcome = await run_stage_isolated(stage, ctx, limits)
            if stage is Stage.PUBLISH:
                outcome = await scratch.publish(settings, ctx, outcome)
            await _step_done(db, upload_id, run_id, attempt, stage, started, outcome)
            await _event(settings, upload_id, UploadStatus.PROCESSING, stage)
        assert outcome is not None
        finished = await _finish(db, settings, upload_id, run_id, attempt, outcome)
        scratch.clear(settings, upload_id)
        return finished
    except StageError as err:
        try:
            source = incident_source(ctx.source, ctx.filename)
            return await _fail(db, settings, upload_id, run_id, attempt, source, err)
        except _Lost:
            await _supersede(db, run_id, err.stage)
            return RunOutcome(
                upload_id,
                "superseded",
                False,
                run_id,
                attempt,
                stage=err.stage.value,
                error_code=SUPERSEDED,
            )
    except _Lost:
        await _supersede(db, run_id, stage)
        return RunOutcome(
            upload_id,
            "superseded",
            False,
            run_id,
            attempt,
            stage=stage.value,
            error_code=SUPERSEDED,
        )


# ------------------------------------------------------------------------------------ claiming


def _resume_point(ctx: StageContext, from_stage: Stage | None) -> tuple[int, str | None]:
    """Where to start: `from_stage` when the earlier stages left their results, else the top."""
    if from_stage is None:
        return 0, None
    index = STAGES.index(from_stage)
    missing = [s for s in STAGES[:index] if not (ctx.work / f"{s.value}.json").is_file()]
    if missing:
        return 0, f"results of {missing[0].value} are missing; starting from standardize"
    return index, f"resumed from {from_stage.value}"


async def _claim(
    db: Database, settings: Settings, upload_id: int, *, worker: str, from_stage: Stage | None
) -> tuple[StageContext, int, int, int] | RunOutcome:
    now = utcnow()
    async with db.unit() as session:
        claimed = await session.execute(
            update(Upload)
            .where(Upload.id == upload_id, Upload.status.in_(CLAIMABLE))
            .values(
                status=UploadStatus.PROCESSING,
                attempt=Upload.attempt + 1,
                error_code=None,
                error_message=None,
                updated_at=now,
            )
        )
        upload = await session.get(Upload, upload_id, populate_existing=True)
        if upload is None:
            return RunOutcome(upload_id, "missing", False, claimed=False)
        if not claimed.rowcount:  # type: ignore[attr-defined]
            status = str(upload.status)
            done = status in (UploadStatus.PUBLISHED, UploadStatus.PARTIAL)
            return RunOutcome(
                upload_id,
                status,
                done,
                attempt=upload.attempt,
                claimed=False,
                report_csv=upload.report_csv,
                report_pdf=upload.report_pdf,
            )
        ctx = await _context(session, settings, upload)
        start, note = _resume_point(ctx, from_stage)
        upload.current_stage = STAGES[start]
        run = JobRun(
            kind=RunKind.PIPELINE,
            task=TASK_NAME,
            upload_id=upload_id,
            department_id=upload.department_id,
            status=RunStatus.RUNNING,
            attempt=upload.attempt,
            worker=worker,
            started_at=now,
            heartbeat_at=now,
            log=[f"attempt {upload.attempt} on {worker}"] + ([note] if note else []),
        )
        session.add(run)
        await session.flush()
        for position, stage in enumerate(STAGES):
            session.add(
                JobRunStep(
                    run_id=run.id,
                    stage=stage,
                    position=position,
                    status=StepStatus.SKIPPED if position < start else StepStatus.PENDING,
                )
            )
        return ctx, run.id, upload.attempt, start


async def _context(session: AsyncSession, settings: Settings, upload: Upload) -> StageContext:
    department = None
    if upload.department_id is not None:
        department = await session.get(Department, upload.department_id)
    elif upload.source:
        department = await session.scalar(
            select(Department).where(Department.name == upload.source)
        )
    uploader = ""
    if upload.uploader_id is not None:
        uploader = (
            await session.scalar(select(User.username).where(User.id == upload.uploader_id)) or ""
        )
    created: datetime | None = upload.created_at
    return make_context(
        settings,
        upload_id=upload.id,
        stored_path="",
        source_key=upload.stored_path,
        source_sha256=upload.sha256,
        filename=upload.filename,
        source=upload.source or "manual",
        mode=str(upload.process_mode or ProcessMode.TRANSFORM),
        config=dict(upload.process_config or {}),
        profile=ValidationProfile.of(department) if department else None,
        uploaded_at=created.strftime("%Y-%m-%d %H:%M UTC") if created else "",
        uploader=uploader,
    )


# ------------------------------------------------------------------------------------- steps


def _mine(upload_id: int, attempt: int) -> Any:
    return (
        Upload.id == upload_id,
        Upload.status == UploadStatus.PROCESSING,
        Upload.attempt == attempt,
    )


async def _step_started(
    db: Database, upload_id: int, run_id: int, attempt: int, stage: Stage
) -> None:
    now = utcnow()
    async with db.unit() as session:
        moved = await session.execute(
            update(Upload)
            .where(*_mine(upload_id, attempt))
            .values(current_stage=stage, updated_at=now)
        )
        if not moved.rowcount:  # type: ignore[attr-defined]
            raise _Lost
        await session.execute(
            update(JobRunStep)
            .where(JobRunStep.run_id == run_id, JobRunStep.stage == stage)
            .values(status=StepStatus.RUNNING, started_at=now)
        )
        await session.execute(update(JobRun).where(JobRun.id == run_id).values(heartbeat_at=now))


def _upload_changes(stage: Stage, outcome: StageOutcome) -> dict[str, Any]:
    if stage == Stage.STANDARDIZE:
        return {"rows_in": outcome.rows_in}
    if stage == Stage.VALIDATE:
        report = outcome.data.get("report", {})
        return {"rows_quarantined": int(report.get("rows_quarantined") or 0)}
    if stage == Stage.SUMMARIZE:
        return {"summary": outcome.data.get("summary")}
    return {}


async def _step_done(
    db: Database,
    upload_id: int,
    run_id: int,
    attempt: int,
    stage: Stage,
    started: datetime,
    outcome: StageOutcome,
) -> None:
    now = utcnow()
    async with db.unit() as session:
        moved = await session.execute(
            update(Upload)
            .where(*_mine(upload_id, attempt))
            .values(updated_at=now, **_upload_changes(stage, outcome))
        )
        if not moved.rowcount:  # type: ignore[attr-defined]
            raise _Lost
        await session.execute(
            update(JobRunStep)
            .where(JobRunStep.run_id == run_id, JobRunStep.stage == stage)
            .values(
                status=StepStatus.SUCCEEDED,
                started_at=started,
                duration_ms=outcome.duration_ms,
                rows_in=outcome.rows_in,
                rows_out=outcome.rows_out,
                log=[str(line) for line in outcome.log],
            )
        )
        values: dict[str, Any] = {"heartbeat_at": now}
        if stage == Stage.STANDARDIZE:
            values["rows_in"] = outcome.rows_in
        if stage == Stage.TRANSFORM:
            plan = {k: v for k, v in outcome.data.items() if k in ("plan", "instruction")}
            values["result"] = plan  # the custom plan's instruction note lives on the run
        await session.execute(update(JobRun).where(JobRun.id == run_id).values(**values))


# ----------------------------------------------------------------------------------- endings


async def _finish(
    db: Database,
    settings: Settings,
    upload_id: int,
    run_id: int,
    attempt: int,
    outcome: StageOutcome,
) -> RunOutcome:
    data = outcome.data
    status = UploadStatus.PARTIAL if data.get("status") == "partial" else UploadStatus.PUBLISHED
    now = utcnow()
    async with db.unit() as session:
        moved = await session.execute(
            update(Upload)
            .where(*_mine(upload_id, attempt))
            .values(
                status=status,
                current_stage=Stage.PUBLISH,
                rows_out=data.get("rows_out"),
                report_csv=data.get("report_csv"),
                report_pdf=data.get("report_pdf"),
                fixlist_csv=data.get("fixlist_csv"),
                fixlist_xlsx=data.get("fixlist_xlsx"),
                published_at=now,
                updated_at=now,
                error_code=None,
                error_message=None,
            )
        )
        if not moved.rowcount:  # type: ignore[attr-defined]
            raise _Lost
        earlier = await session.scalar(select(JobRun.result).where(JobRun.id == run_id)) or {}
        keys = ("status", "report_csv", "report_pdf", "fixlist_csv", "fixlist_xlsx", "rows_out")
        await session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(
                status=RunStatus.SUCCEEDED,
                finished_at=now,
                heartbeat_at=now,
                rows_out=data.get("rows_out"),
                result={**earlier, **{k: data.get(k) for k in keys}},
            )
        )
    await _event(settings, upload_id, status, Stage.PUBLISH)
    await events.publish(
        settings, events.Event(type="run.updated", id=run_id, status=RunStatus.SUCCEEDED.value)
    )
    return RunOutcome(
        upload_id,
        status.value,
        True,
        run_id,
        attempt,
        stage=Stage.PUBLISH.value,
        report_csv=data.get("report_csv"),
        report_pdf=data.get("report_pdf"),
    )


async def _fail(
    db: Database,
    settings: Settings,
    upload_id: int,
    run_id: int,
    attempt: int,
    source: str,
    err: StageError,
) -> RunOutcome:
    now = utcnow()
    details = dict(err.details)
    details.update({k: v for k, v in (("row", err.row), ("column", err.column)) if v is not None})
    lines = [f"{err.code}: {err.message}"] + ([f"hint: {err.hint}"] if err.hint else [])
    incident_id: int | None = None
    async with db.unit() as session:
        moved = await session.execute(
            update(Upload)
            .where(*_mine(upload_id, attempt))
            .values(
                status=UploadStatus.FAILED,
                current_stage=err.stage,
                error_code=err.code[:64],
                error_message=err.message,
                updated_at=now,
            )
        )
        if not moved.rowcount:  # type: ignore[attr-defined]
            raise _Lost
        await session.execute(
            update(JobRunStep)
            .where(JobRunStep.run_id == run_id, JobRunStep.stage == err.stage)
            .values(status=StepStatus.FAILED, log=lines)
        )
        await session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(
                status=RunStatus.FAILED,
                finished_at=now,
                heartbeat_at=now,
                error_code=err.code[:64],
                error_message=err.message,
            )
        )
        incident_id = await record_stage_failure(
            session,
            source=source,
            failure=FailureInfo(
                code=err.code, message=err.message, stage=err.stage, hint=err.hint, details=details
            ),
            upload_id=upload_id,
            run_id=run_id,
            settings=settings,
        )
    log.info("upload %s failed at %s: %s", upload_id, err.stage.value, err)
    await _event(settings, upload_id, UploadStatus.FAILED, err.stage)
    await events.publish(
        settings, events.Event(type="run.updated", id=run_id, status=RunStatus.FAILED.value)
    )
    await events.publish(
        settings, events.Event(type="incident.updated", id=incident_id, status="open")
    )
    return RunOutcome(
        upload_id,
        UploadStatus.FAILED.value,
        False,
        run_id,
        attempt,
        stage=err.stage.value,
        error_code=err.code,
        error_message=err.message,
        incident_id=incident_id,
    )


async def _supersede(db: Database, run_id: int, stage: Stage) -> None:
    async with db.unit() as session:
        await session.execute(
            update(JobRun)
            .where(JobRun.id == run_id, JobRun.status == RunStatus.RUNNING)
            .values(
                status=RunStatus.CANCELLED,
                finished_at=utcnow(),
                error_code=SUPERSEDED,
                error_message=f"another attempt took over the upload during {stage.value}",
            )
        )


async def _event(settings: Settings, upload_id: int, status: UploadStatus, stage: Stage) -> None:
    await events.publish(
        settings,
        events.Event(type="upload.updated", id=upload_id, status=status.value, stage=stage.value),
    )
