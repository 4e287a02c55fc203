"""Task bodies shared by the arq worker (daemon) and the embedded in-process worker.

Tasks take ids and plain JSON values, never objects, so that any worker can run any job and a
repeated run (at-least-once delivery) finds the database as the record of what already happened.

Failures come in two kinds. A *transient* one (the database or Redis connection dropped, a lock
timed out) raises `TransientError` after handing the upload back, and the worker retries the job
with backoff up to `worker.max_tries`. A *data* failure (a bad file) is recorded by the pipeline as
an incident and is never retried blindly: only a known error's remediation retries it, with a
changed configuration. A task that outlives `worker.job_timeout` is stopped and becomes an incident.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from batchops_core.enums import RunStatus, Stage, UploadStatus
from batchops_core.infra import events
from batchops_core.infra.clock import utcnow
from batchops_core.models import Incident, Job, JobRun, Upload
from batchops_core.remediation import (
    describe_change,
    mark_auto_resolved,
    plan_retry,
    record_auto_retry,
    remediation_for,
)
from batchops_core.sources.completion import on_upload_finished
from batchops_core.worker.automation import frame as automation
from batchops_core.worker.automation.registry import AUTOMATIONS
from batchops_core.worker.context import TaskContext
from batchops_core.worker.retry import TransientError, is_transient
from batchops_core.worker.scheduler import record_firing_result
from batchops_core.worker.sweeper import fail_upload, hand_back_upload

log = logging.getLogger(__name__)


TaskFn = Callable[..., Awaitable[Any]]


async def process_upload(ctx: TaskContext, upload_id: int) -> dict[str, Any]:
    """Run the five pipeline stages for one upload, then try a known error's remediation."""
    outcome = await _run_pipeline(ctx, upload_id, None)
    if not outcome.get("succeeded") and outcome.get("incident_id"):
        outcome["remediation"] = await try_remediation(ctx, upload_id, outcome)
    await _quietly(on_upload_finished(ctx.db, ctx.settings, upload_id))
    return outcome


async def retry_upload(
    ctx: TaskContext,
    upload_id: int,
    from_stage: str | None = None,
    incident_id: int | None = None,
) -> dict[str, Any]:
    """Run an upload again (from `from_stage` when given); a success resolves `incident_id`.

    The caller (incident retry, remediation) has already moved the upload back to `queued`.
    `incident_id` is given only by automatic remediation: its success resolves the incident with
    the reason on the timeline; a manual retry's incident is resolved by a person.
    """
    stage = Stage(from_stage) if from_stage else None
    outcome = await _run_pipeline(ctx, upload_id, stage)
    if incident_id is not None and outcome.get("succeeded"):
        await _auto_resolve(ctx, incident_id, upload_id)
    await _quietly(on_upload_finished(ctx.db, ctx.settings, upload_id))
    return outcome


async def _run_pipeline(ctx: TaskContext, upload_id: int, stage: Stage | None) -> dict[str, Any]:
    # Imported on first use: the runner brings the pipeline (pandas, ~0.7 s), which a TUI that
    # only enqueues on Redis never needs.
    from batchops_core.pipeline.runner import run_upload

    ctx.tracker.add_upload(upload_id)
    deadline = asyncio.timeout(ctx.settings.worker.job_timeout)
    try:
        async with deadline:
            result = await run_upload(
                ctx.db, ctx.settings, upload_id, worker=ctx.worker, from_stage=stage
            )
        return dict(result.as_dict())
    except asyncio.CancelledError:
        # Shutdown or a lost worker slot: give the upload back so the re-delivered job can run it.
        await asyncio.shield(hand_back_upload(ctx.db, ctx.settings, upload_id, worker=ctx.worker))
        raise
    except Exception as exc:
        if deadline.expired():
            seconds = ctx.settings.worker.job_timeout
            message = f"processing took longer than the job timeout of {seconds} s; stopped."
            return await _fail(ctx, upload_id, "JOB_TIMEOUT", message)
        if is_transient(exc) and not ctx.final_try:
            log.warning("upload %s: transient failure, will retry: %s", upload_id, exc)
            await _quietly(hand_back_upload(ctx.db, ctx.settings, upload_id, worker=ctx.worker))
            raise TransientError(f"upload {upload_id}: {exc}") from exc
        log.exception("upload %s failed outside its stages", upload_id)
        code = "TRANSIENT_EXHAUSTED" if is_transient(exc) else "INTERNAL"
        return await _fail(ctx, upload_id, code, f"{type(exc).__name__}: {exc}"[:2000])
    finally:
        ctx.tracker.done_upload(upload_id)


async def _fail(ctx: TaskContext, upload_id: int, code: str, message: str) -> dict[str, Any]:

    incident_id: int | None = None
    try:
        incident_id = await fail_upload(
            ctx.db, ctx.settings, upload_id, worker=ctx.worker, code=code, message=message
        )
    except Exception as exc:
        log.warning(
            "could not record the failure of upload %s yet (the sweeper will): %s", upload_id, exc
        )
    if incident_id is not None:  # final: no retry follows a timeout or an exhausted retry
        await automation.notify_failure(
            ctx,
            job_id=None,
            incident_id=incident_id,
            subject=f"upload {upload_id} failed",
            text=f"Upload {upload_id} failed after {ctx.job_try} attempt(s):\n\n"
            f"{code}: {message}\n\nIncident #{incident_id} records it.",
        )
    return {
        "upload_id": upload_id,
        "status": UploadStatus.FAILED.value,
        "succeeded": False,
        "error_code": code,
        "error_message": message,
        "incident_id": incident_id,
    }


async def _quietly(work: Awaitable[Any]) -> None:
    """Best-effort bookkeeping after a failure; the sweeper repairs what this cannot."""
    try:
        await work
    except Exception as exc:
        log.warning("could not record the failure yet (the sweeper will): %s", exc)


async def try_remediation(ctx: TaskContext, upload_id: int, outcome: dict[str, Any]) -> str:
    """Retry a failed upload once per remediation with the configuration a known error names.

    Bounded by `worker.max_tries` automatic retries per incident. Returns what was done, for the
    task's result and log.
    """
    incident_id = int(outcome["incident_id"])
    async with ctx.db.unit() as session:
        incident = await session.get(Incident, incident_id)
        upload = await session.get(Upload, upload_id)
        if incident is None or upload is None or upload.status != UploadStatus.FAILED:
            return "nothing to remediate"
        if incident.auto_retry_count >= ctx.settings.worker.max_tries:
            return "automatic retries exhausted"
        found = await remediation_for(session, incident_id=incident_id)
        if found is None:
            return "no remediation known"
        remediation, args = found
        old_config = dict(upload.process_config)
        new_config = plan_retry(remediation, args, str(outcome.get("error_code") or ""), old_config)
        if new_config is None:
            return f"{remediation.value} does not apply"
        claimed = await session.execute(
            update(Upload)
            .where(Upload.id == upload_id, Upload.status == UploadStatus.FAILED)
            .values(status=UploadStatus.QUEUED, process_config=new_config)
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            return "upload changed meanwhile"
        await record_auto_retry(
            session,
            incident_id=incident_id,
            remediation=remediation,
            detail=describe_change(old_config, new_config),
        )
    defer = float(args.get("delay_seconds", 0) or 0) if isinstance(args, dict) else 0.0
    await enqueue_follow_up(
        ctx, retry_upload, upload_id, None, incident_id, defer_seconds=defer or None
    )
    return f"retrying with {remediation.value}"


async def _auto_resolve(ctx: TaskContext, incident_id: int, upload_id: int) -> None:
    async with ctx.db.unit() as session:
        await mark_auto_resolved(
            session,
            incident_id=incident_id,
            reason=f"automatic retry of upload {upload_id} succeeded",
        )

    await events.publish(
        ctx.settings, events.Event(type="incident.updated", id=incident_id, status="resolved")
    )


async def enqueue_follow_up(
    ctx: TaskContext,
    task: TaskFn,
    *args: Any,
    job_id: str | None = None,
    defer_seconds: float | None = None,
) -> None:
    """Queue follow-up work (a task function of this module) through the dispatcher, or run it
    now when there is none."""
    if ctx.dispatcher is not None:
        await ctx.dispatcher.enqueue(
            task.__name__, *args, job_id=job_id, defer_seconds=defer_seconds
        )
        return
    if defer_seconds:
        await asyncio.sleep(defer_seconds)
    await task(ctx, *args)


async def run_schedule(
    ctx: TaskContext, job_id: int, scheduled_for: str | None = None
) -> dict[str, Any]:
    """Fire one schedule: run its automation task as a JobRun that records how late it started.

    Idempotent per firing: a firing that already has a running or finished run is not run again,
    so a re-delivered or doubly enqueued firing does nothing.
    """
    now = utcnow()
    fired_for = datetime.fromisoformat(scheduled_for) if scheduled_for else now
    earlier_run = (
        select(JobRun.id)
        .where(
            JobRun.job_id == job_id,
            JobRun.scheduled_for == fired_for,
            JobRun.status.in_([RunStatus.RUNNING, RunStatus.SUCCEEDED, RunStatus.SKIPPED]),
        )
        .limit(1)
        .scalar_subquery()
    )
    async with ctx.db.engine.connect() as conn:
        row = (
            await conn.execute(select(Job.task, Job.arguments, earlier_run).where(Job.id == job_id))
        ).one_or_none()
    if row is None:
        return {"job_id": job_id, "status": RunStatus.SKIPPED.value, "reason": "no such schedule"}
    task, arguments, done = row[0], dict(row[1] or {}), row[2]
    if done is not None:
        return {"job_id": job_id, "status": "duplicate", "run_id": done}
    lateness = max(0.0, (now - fired_for).total_seconds())
    result = await automation.run_automation(
        ctx,
        task,
        (),
        arguments,
        job_id=job_id,
        scheduled_for=fired_for,
        lateness=lateness,
    )
    if result["status"] not in (RunStatus.SUCCEEDED.value, RunStatus.SKIPPED.value):
        # A successful run recorded the schedule's last status with its own row (RunBook).
        async with ctx.db.unit() as session:
            await record_firing_result(
                session, job_id=job_id, status=RunStatus(result["status"]), finished_at=utcnow()
            )

    await events.publish(
        ctx.settings,
        events.Event(type="schedule.updated", id=job_id, status=result["status"]),
    )
    return result


def _automation_task(name: str) -> TaskFn:
    async def task(ctx: TaskContext, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return await automation.run_automation(ctx, name, args, kwargs)

    task.__name__ = name
    task.__qualname__ = name
    task.__doc__ = AUTOMATIONS[name].body.__doc__
    return task


PROCESS_UPLOAD = process_upload.__name__
RETRY_UPLOAD = retry_upload.__name__
RUN_SCHEDULE = run_schedule.__name__

TASKS: dict[str, TaskFn] = {
    PROCESS_UPLOAD: process_upload,
    RETRY_UPLOAD: retry_upload,
    RUN_SCHEDULE: run_schedule,
    **{name: _automation_task(name) for name in AUTOMATIONS},
}
