"""Run the five stages of one upload: claim it, record every step, publish only once.

Concurrency contract (arq is at-least-once and a timed-out job can run twice at the same time):

* The upload is *claimed* by a conditional UPDATE (`status = queued` → `processing`,
  `attempt + 1`). A second runner finds nothing to claim and returns without work.
* Every later write to the upload is conditional on `status = 'processing' AND attempt = :mine`.
  A runner that lost the upload meanwhile (the sweeper gave it to another worker) stops at its
  next write and never publishes (a small upload's next write follows its one pool call and
  precedes the storing of its reports).
* Stages are idempotent: they write into this host's `scratch/work/<id>/` by atomic rename under
  fixed names; publish puts the reports in storage under fixed keys `exports/<id>/…` (one atomic
  put each, `scratch.py`) before the conditional UPDATE names them, so a re-run overwrites the
  same objects and a crash leaves the old object or the new one — never half a report, and never
  a key the database names without its object.
* Every host reads the upload from shared storage (`scratch.materialize`): a rerun from a failed
  stage on a host without the earlier stages' scratch starts again from standardize.

Each stage runs in a warm pool process leased to this upload (`isolation.py`, `pool.py`) under
the `[pipeline]` parse limits. A small upload (`ONE_CALL_MAX_BYTES`, not a PDF) runs all its
stages in *one* call of that process: its stages take a few milliseconds, less than a pool round
trip each. Its steps are then written after the call, with the timings the pool process measured,
and their events leave together — one per stage, as stage by stage.

Writes are few and short: the claim writes the run, its steps and the first stage's start in one
transaction; a stage's end and the next one's start share one (a small upload's first four stages
and publish's start share one); publish's end and the upload's final state share the last. They
are Core statements on the tables (no ORM unit of work to flush), each transaction still opened by
the conditional UPDATE of the upload, and stamped with `shared_now()` (the database's clock) since
other hosts' sweepers compare them. A `StageError` fails the upload and its run and becomes an
incident through `incidents.record_stage_failure` — so does the death of the upload's process
(PARSE_CRASHED), which touches no other upload. A cancelled run (the job timeout) kills its
process, so the work stops with the job.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Row, Table, Update, and_, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

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
from batchops_core.infra.clock import shared_now
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Department, JobRun, JobRunStep, Upload, User
from batchops_core.pipeline import scratch
from batchops_core.pipeline.errors import StageError
from batchops_core.pipeline.isolation import run_stage_isolated, run_stages_isolated
from batchops_core.pipeline.limits import ParseLimits
from batchops_core.pipeline.profile import ValidationProfile
from batchops_core.pipeline.stages import StageContext, StageOutcome, make_context, work_dir

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
ONE_CALL_MAX_BYTES = 64 * 1024
"""Uploads up to this size run their stages in one pool call. Measured here, 20-row CSVs take
~25 ms of stage work against ~5 ms of bookkeeping per pool call; a 64 KB CSV (~1,500 rows) takes
well under a second, so its stages are not worth following live one by one."""
ONE_CALL_SKIPS = (".pdf",)
"""Suffixes that run stage by stage whatever their size: a few pages of PDF already take seconds
to parse, and the operator follows those stages live."""

_uploads = cast(Table, Upload.__table__)
_runs = cast(Table, JobRun.__table__)
_steps = cast(Table, JobRunStep.__table__)
_departments = cast(Table, Department.__table__)
_users = cast(Table, User.__table__)

_UPLOAD_CONTEXT = select(
    _uploads.c.status,
    _uploads.c.attempt,
    _uploads.c.report_csv,
    _uploads.c.report_pdf,
    _uploads.c.filename,
    _uploads.c.stored_path,
    _uploads.c.sha256,
    _uploads.c.size_bytes,
    _uploads.c.source,
    _uploads.c.process_mode,
    _uploads.c.process_config,
    _uploads.c.created_at,
    _uploads.c.department_id,
    _departments.c.id.label("profile_id"),
    _departments.c.gradebook,
    _departments.c.key_column,
    _departments.c.required_columns,
    _departments.c.aliases,
    _users.c.username,
).select_from(
    _uploads.outerjoin(
        _departments,
        or_(
            _departments.c.id == _uploads.c.department_id,
            and_(_uploads.c.department_id.is_(None), _departments.c.name == _uploads.c.source),
        ),
    ).outerjoin(_users, _users.c.id == _uploads.c.uploader_id)
)
"""The upload with its department's profile (by id, else by its source's name) and uploader."""

_STEP = (
    update(_steps)
    .where(_steps.c.run_id == bindparam("b_run"), _steps.c.stage == bindparam("b_stage"))
    .values(
        status=bindparam("b_status"),
        started_at=bindparam("b_started"),
        duration_ms=bindparam("b_ms"),
        rows_in=bindparam("b_in"),
        rows_out=bindparam("b_out"),
        log=bindparam("b_log"),
    )
)
"""One step's state (executemany: the steps a transaction records)."""

_CLAIM = (
    update(_uploads)
    .where(_uploads.c.id == bindparam("b_upload"), _uploads.c.status.in_(CLAIMABLE))
    .values(
        status=UploadStatus.PROCESSING,
        attempt=_uploads.c.attempt + 1,
        current_stage=bindparam("b_stage"),
        error_code=None,
        error_message=None,
        updated_at=bindparam("b_now"),
    )
    .returning(_uploads.c.attempt)
)
_CONTEXT = _UPLOAD_CONTEXT.where(_uploads.c.id == bindparam("b_upload"))
_NEW_RUN = insert(_runs).returning(_runs.c.id)
_NEW_STEPS = insert(_steps)
_SUPERSEDE = (
    update(_runs)
    .where(_runs.c.id == bindparam("b_run"), _runs.c.status == RunStatus.RUNNING)
    .values(
        status=RunStatus.CANCELLED,
        finished_at=bindparam("b_now"),
        error_code=SUPERSEDED,
        error_message=bindparam("b_message"),
    )
)


@functools.cache
def _upload_write(columns: tuple[str, ...]) -> Update:
    """The attempt's conditional UPDATE of its upload, setting `columns` (bound as `b_<name>`).

    Statements are built once per shape: building one and computing its cache key cost more of
    the event loop than executing it."""
    return (
        update(_uploads)
        .where(
            _uploads.c.id == bindparam("b_upload"),
            _uploads.c.status == UploadStatus.PROCESSING,
            _uploads.c.attempt == bindparam("b_attempt"),
        )
        .values({c: bindparam(f"b_{c}") for c in columns})
    )


@functools.cache
def _run_write(columns: tuple[str, ...]) -> Update:
    """UPDATE of the run row setting `columns` (bound as `b_<name>`), built once per shape."""
    return (
        update(_runs)
        .where(_runs.c.id == bindparam("b_run"))
        .values({c: bindparam(f"b_{c}") for c in columns})
    )


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


@dataclass
class _Run:
    """One claimed attempt: what its writes are conditional on, and what it has not written yet."""

    db: Database
    settings: Settings
    upload_id: int
    run_id: int
    attempt: int
    ctx: StageContext
    stages: tuple[Stage, ...]
    one_call: bool
    stage: Stage = Stage.STANDARDIZE
    """The stage running now (or that failed)."""
    unrecorded: list[StageOutcome] = field(default_factory=list)
    """Stages done in a one-call run whose steps no transaction has written yet."""
    result: dict[str, Any] = field(default_factory=dict)
    """The run's `result` so far (transform's plan and instruction note)."""


async def run_upload(
    db: Database,
    settings: Settings,
    upload_id: int,
    *,
    worker: str,
    from_stage: Stage | None = None,
) -> RunOutcome:
    """Claim and process one upload; see the module docstring for the guarantees."""
    run = await _claim(db, settings, upload_id, worker=worker, from_stage=from_stage)
    if isinstance(run, RunOutcome):
        return run
    limits = ParseLimits.of(settings.pipeline)
    await _event(settings, upload_id, UploadStatus.PROCESSING, run.stage)
    try:
        if run.stage is Stage.STANDARDIZE:
            run.ctx = await scratch.materialize(settings, run.ctx)
        if run.one_call:
            outcome = await _stages_in_one_call(run, limits)
        else:
            outcome = await _stage_by_stage(run, limits)
        finished = await _finish(run, outcome)
        await asyncio.to_thread(scratch.clear, settings, upload_id)
        return finished
    except StageError as err:
        run.stage = err.stage
        try:
            return await _fail(run, incident_source(run.ctx.source, run.ctx.filename), err)
        except _Lost:
            pass
    except _Lost:
        pass
    await _supersede(db, run.run_id, run.stage)
    return RunOutcome(
        upload_id,
        "superseded",
        False,
        run.run_id,
        run.attempt,
        stage=run.stage.value,
        error_code=SUPERSEDED,
    )


async def _stage_by_stage(run: _Run, limits: ParseLimits) -> StageOutcome:
    """Each stage its own pool call; a stage's end and the next one's start share a write."""
    outcome: StageOutcome | None = None
    for position, stage in enumerate(run.stages):
        run.stage = stage
        outcome = await run_stage_isolated(stage, run.ctx, limits)
        if stage is Stage.PUBLISH:
            outcome = await scratch.publish(run.settings, run.ctx, outcome)
        if position + 1 < len(run.stages):
            await _record(run, [outcome], then=run.stages[position + 1])
            await _event(run.settings, run.upload_id, UploadStatus.PROCESSING, stage)
    assert outcome is not None
    return outcome


async def _stages_in_one_call(run: _Run, limits: ParseLimits) -> StageOutcome:
    """Every stage in one pool call; the steps before publish are written (conditionally) before
    the reports go to storage, publish's with the upload's final state."""
    result = await run_stages_isolated(run.stages, run.ctx, limits)
    if result.error is not None:
        run.unrecorded = result.outcomes
        raise result.error
    *before, last = result.outcomes
    if before:
        await _record(run, before, then=Stage.PUBLISH)
        await events.publish_all(
            run.settings,
            [_upload_event(run.upload_id, UploadStatus.PROCESSING, o) for o in before],
        )
    run.stage = Stage.PUBLISH
    return await scratch.publish(run.settings, run.ctx, last)


# ------------------------------------------------------------------------------------ claiming


def _resume_point(work: Path, from_stage: Stage | None) -> tuple[int, str | None]:
    """Where to start: `from_stage` when the earlier stages left their results, else the top."""
    if from_stage is None:
        return 0, None
    index = STAGES.index(from_stage)
    missing = [s for s in STAGES[:index] if not (work / f"{s.value}.json").is_file()]
    if missing:
        return 0, f"results of {missing[0].value} are missing; starting from standardize"
    return index, f"resumed from {from_stage.value}"


def _one_call(row: Row[Any]) -> bool:
    small = 0 < int(row.size_bytes or 0) <= ONE_CALL_MAX_BYTES
    return small and not str(row.filename).lower().endswith(ONE_CALL_SKIPS)


async def _claim(
    db: Database, settings: Settings, upload_id: int, *, worker: str, from_stage: Stage | None
) -> _Run | RunOutcome:
    """Claim the upload, open its run with every step and start the first stage: one write."""
    now = shared_now()
    start, note = _resume_point(work_dir(settings, upload_id), from_stage)
    async with db.engine.begin() as conn:
        attempt = (
            await conn.execute(
                _CLAIM, {"b_upload": upload_id, "b_stage": STAGES[start], "b_now": now}
            )
        ).scalar_one_or_none()
        row = (await conn.execute(_CONTEXT, {"b_upload": upload_id})).one_or_none()
        if row is None:
            return RunOutcome(upload_id, "missing", False, claimed=False)
        if attempt is None:
            status = str(row.status)
            return RunOutcome(
                upload_id,
                status,
                status in (UploadStatus.PUBLISHED, UploadStatus.PARTIAL),
                attempt=row.attempt,
                claimed=False,
                report_csv=row.report_csv,
                report_pdf=row.report_pdf,
            )
        run_id = (
            await conn.execute(
                _NEW_RUN,
                {
                    "kind": RunKind.PIPELINE,
                    "task": TASK_NAME,
                    "upload_id": upload_id,
                    "department_id": row.department_id,
                    "status": RunStatus.RUNNING,
                    "attempt": attempt,
                    "worker": worker,
                    "started_at": now,
                    "heartbeat_at": now,
                    "log": [f"attempt {attempt} on {worker}"] + ([note] if note else []),
                },
            )
        ).scalar_one()
        await conn.execute(
            _NEW_STEPS,
            [
                {
                    "run_id": run_id,
                    "stage": stage,
                    "position": position,
                    "status": (
                        StepStatus.SKIPPED
                        if position < start
                        else StepStatus.RUNNING
                        if position == start
                        else StepStatus.PENDING
                    ),
                    "started_at": now if position == start else None,
                    "log": [],
                }
                for position, stage in enumerate(STAGES)
            ],
        )
    return _Run(
        db,
        settings,
        upload_id,
        run_id,
        attempt,
        _context(settings, upload_id, row),
        STAGES[start:],
        _one_call(row),
        stage=STAGES[start],
    )


def _context(settings: Settings, upload_id: int, row: Row[Any]) -> StageContext:
    created: datetime | None = row.created_at
    return make_context(
        settings,
        upload_id=upload_id,
        stored_path="",
        source_key=row.stored_path,
        source_sha256=row.sha256,
        filename=row.filename,
        source=row.source or "manual",
        mode=str(row.process_mode or ProcessMode.TRANSFORM),
        config=dict(row.process_config or {}),
        profile=ValidationProfile.of(row) if row.profile_id is not None else None,
        uploaded_at=created.strftime("%Y-%m-%d %H:%M UTC") if created else "",
        uploader=row.username or "",
    )


# ------------------------------------------------------------------------------------- steps


async def _write_upload(conn: AsyncConnection, run: _Run, values: dict[str, Any]) -> bool:
    """Set `values` on the upload if it is still this attempt's; False when it is not."""
    moved = await conn.execute(
        _upload_write(tuple(values)),
        {"b_upload": run.upload_id, "b_attempt": run.attempt}
        | {f"b_{k}": v for k, v in values.items()},
    )
    return bool(moved.rowcount)


async def _write_run(conn: AsyncConnection, run: _Run, values: dict[str, Any]) -> None:
    await conn.execute(
        _run_write(tuple(values)), {"b_run": run.run_id} | {f"b_{k}": v for k, v in values.items()}
    )


def _upload_changes(outcomes: Sequence[StageOutcome]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for outcome in outcomes:
        stage = Stage(outcome.stage)
        if stage is Stage.STANDARDIZE:
            changes["rows_in"] = outcome.rows_in
        elif stage is Stage.VALIDATE:
            report = outcome.data.get("report", {})
            changes["rows_quarantined"] = int(report.get("rows_quarantined") or 0)
        elif stage is Stage.SUMMARIZE:
            changes["summary"] = outcome.data.get("summary")
    return changes


def _run_changes(run: _Run, outcomes: Sequence[StageOutcome]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for outcome in outcomes:
        stage = Stage(outcome.stage)
        if stage is Stage.STANDARDIZE:
            changes["rows_in"] = outcome.rows_in
        elif stage is Stage.TRANSFORM:
            plan = {k: v for k, v in outcome.data.items() if k in ("plan", "instruction")}
            run.result = plan  # the custom plan's instruction note lives on the run
            changes["result"] = plan
    return changes


def _step_done(run_id: int, outcome: StageOutcome) -> dict[str, Any]:
    return {
        "b_run": run_id,
        "b_stage": Stage(outcome.stage),
        "b_status": StepStatus.SUCCEEDED,
        "b_started": outcome.started_at,
        "b_ms": outcome.duration_ms,
        "b_in": outcome.rows_in,
        "b_out": outcome.rows_out,
        "b_log": [str(line) for line in outcome.log],
    }


def _step_started(run_id: int, stage: Stage, now: datetime) -> dict[str, Any]:
    return {
        "b_run": run_id,
        "b_stage": stage,
        "b_status": StepStatus.RUNNING,
        "b_started": now,
        "b_ms": None,
        "b_in": None,
        "b_out": None,
        "b_log": [],
    }


async def _write_steps(
    conn: AsyncConnection, run: _Run, outcomes: Sequence[StageOutcome], now: datetime
) -> None:
    """The steps and run columns of `outcomes` (the upload's own write, conditional, went first)."""
    await conn.execute(_STEP, [_step_done(run.run_id, o) for o in outcomes])
    await _write_run(conn, run, {"heartbeat_at": now, **_run_changes(run, outcomes)})


async def _record(run: _Run, outcomes: Sequence[StageOutcome], *, then: Stage) -> None:
    """Write finished steps and start the step `then`, in one transaction; `_Lost` when the
    upload is no longer this attempt's."""
    now = shared_now()
    async with run.db.engine.begin() as conn:
        values = {"current_stage": then, "updated_at": now, **_upload_changes(outcomes)}
        if not await _write_upload(conn, run, values):
            raise _Lost
        await conn.execute(
            _STEP,
            [_step_done(run.run_id, o) for o in outcomes] + [_step_started(run.run_id, then, now)],
        )
        await _write_run(conn, run, {"heartbeat_at": now, **_run_changes(run, outcomes)})
    run.stage = then


# ----------------------------------------------------------------------------------- endings


async def _finish(run: _Run, outcome: StageOutcome) -> RunOutcome:
    data = outcome.data
    status = UploadStatus.PARTIAL if data.get("status") == "partial" else UploadStatus.PUBLISHED
    now = shared_now()
    async with run.db.engine.begin() as conn:
        published = {
            "status": status,
            "current_stage": Stage.PUBLISH,
            "rows_out": data.get("rows_out"),
            **{k: data.get(k) for k in scratch.OUTPUTS},
            "published_at": now,
            "updated_at": now,
            "error_code": None,
            "error_message": None,
        }
        if not await _write_upload(conn, run, published):
            raise _Lost
        await conn.execute(_STEP, [_step_done(run.run_id, outcome)])
        keys = ("status", *scratch.OUTPUTS, "rows_out")
        await _write_run(
            conn,
            run,
            {
                "status": RunStatus.SUCCEEDED,
                "finished_at": now,
                "heartbeat_at": now,
                "rows_out": data.get("rows_out"),
                "result": {**run.result, **{k: data.get(k) for k in keys}},
            },
        )
    await events.publish_all(
        run.settings,
        [
            _upload_event(run.upload_id, UploadStatus.PROCESSING, outcome),
            _upload_event(run.upload_id, status, outcome),
            events.Event(type="run.updated", id=run.run_id, status=RunStatus.SUCCEEDED.value),
        ],
    )
    return RunOutcome(
        run.upload_id,
        status.value,
        True,
        run.run_id,
        run.attempt,
        stage=Stage.PUBLISH.value,
        report_csv=data.get("report_csv"),
        report_pdf=data.get("report_pdf"),
    )


async def _fail(run: _Run, source: str, err: StageError) -> RunOutcome:
    """Fail the upload and its run at `err.stage` (after writing the steps a one-call run
    finished before it) and record the incident, in one transaction."""
    now = shared_now()
    details = dict(err.details)
    details.update({k: v for k, v in (("row", err.row), ("column", err.column)) if v is not None})
    lines = [f"{err.code}: {err.message}"] + ([f"hint: {err.hint}"] if err.hint else [])
    done, run.unrecorded = run.unrecorded, []
    incident_id: int | None = None
    async with run.db.unit() as session:
        conn = await session.connection()
        failed = {
            "status": UploadStatus.FAILED,
            "current_stage": err.stage,
            "error_code": err.code[:64],
            "error_message": err.message,
            "updated_at": now,
            **_upload_changes(done),
        }
        if not await _write_upload(conn, run, failed):
            raise _Lost
        if done:
            await _write_steps(conn, run, done, now)
        await conn.execute(
            update(_steps)
            .where(_steps.c.run_id == run.run_id, _steps.c.stage == err.stage)
            .values(status=StepStatus.FAILED, log=lines)
        )
        await _write_run(
            conn,
            run,
            {
                "status": RunStatus.FAILED,
                "finished_at": now,
                "heartbeat_at": now,
                "error_code": err.code[:64],
                "error_message": err.message,
            },
        )
        incident_id = await record_stage_failure(
            session,
            source=source,
            failure=FailureInfo(
                code=err.code, message=err.message, stage=err.stage, hint=err.hint, details=details
            ),
            upload_id=run.upload_id,
            run_id=run.run_id,
            settings=run.settings,
        )
    log.info("upload %s failed at %s: %s", run.upload_id, err.stage.value, err)
    await events.publish_all(
        run.settings,
        [
            *(_upload_event(run.upload_id, UploadStatus.PROCESSING, o) for o in done),
            events.Event(
                type="upload.updated",
                id=run.upload_id,
                status=UploadStatus.FAILED.value,
                stage=err.stage.value,
            ),
            events.Event(type="run.updated", id=run.run_id, status=RunStatus.FAILED.value),
            events.Event(type="incident.updated", id=incident_id, status="open"),
        ],
    )
    return RunOutcome(
        run.upload_id,
        UploadStatus.FAILED.value,
        False,
        run.run_id,
        run.attempt,
        stage=err.stage.value,
        error_code=err.code,
        error_message=err.message,
        incident_id=incident_id,
    )


async def _supersede(db: Database, run_id: int, stage: Stage) -> None:
    message = f"another attempt took over the upload during {stage.value}"
    params = {"b_run": run_id, "b_now": shared_now(), "b_message": message}
    async with db.engine.begin() as conn:
        await conn.execute(_SUPERSEDE, params)


def _upload_event(upload_id: int, status: UploadStatus, outcome: StageOutcome) -> events.Event:
    return events.Event(
        type="upload.updated", id=upload_id, status=status.value, stage=Stage(outcome.stage).value
    )


async def _event(settings: Settings, upload_id: int, status: UploadStatus, stage: Stage) -> None:
    await events.publish(
        settings,
        events.Event(type="upload.updated", id=upload_id, status=status.value, stage=stage.value),
    )
