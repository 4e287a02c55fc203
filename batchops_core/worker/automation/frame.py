"""Automation tasks (ingests, reminders, digest, backup, purge, fetch), each recorded as a JobRun.

`run_automation` is the one frame around every body: it writes the JobRun (kind automation) with
its attempt, worker, lateness and log, keeps it alive in the heartbeat, turns a transient failure
into a retry (`TransientError`) and any final failure into an incident plus a notification to the
schedule's owner. Notifications go out only when no retry follows. The bodies live in
`automation_jobs.py`-style sections below and take an `AutomationRun` as first argument.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from batchops_core.enums import RunKind, RunStatus
from batchops_core.errors import BatchOpsError
from batchops_core.incidents import FailureInfo, record_task_failure, resolve_task_incidents
from batchops_core.infra import events
from batchops_core.infra.batching import MicroBatch
from batchops_core.infra.clock import shared_now, utcnow
from batchops_core.infra.db import Database
from batchops_core.infra.mail import MailError, send_mail
from batchops_core.models import Incident, Job, JobRun, User
from batchops_core.worker.automation.registry import body_of
from batchops_core.worker.retry import TransientError, is_transient

if TYPE_CHECKING:
    from batchops_core.worker.context import TaskContext

log = logging.getLogger(__name__)

MAX_LOG_LINES = 500
RUNBOOK_LINGER = 0.01
"""Seconds a run row waits for others to share its transaction (see `batching.py`)."""


class RunCancelled(Exception):
    """A person cancelled the run (`services/actions.cancel_run`): its row is `cancelled`."""


CANCEL_POLL_SECONDS = 1.0
"""How often a running body's row is read to see whether a person cancelled it."""


async def _watched(run: AutomationRun, work: Coroutine[Any, Any, Outcome]) -> Outcome:
    """Await the body; stop it when its run row turns `cancelled` (read every second, so a task
    done in under a second costs no query). Any other end of the frame stops the body too."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=CANCEL_POLL_SECONDS)
            if done:
                return task.result()
            async with run.ctx.db.unit() as session:
                status = await session.scalar(select(JobRun.status).where(JobRun.id == run.run_id))
            if status is RunStatus.CANCELLED:
                raise RunCancelled
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


class AutomationFailed(BatchOpsError):
    """A task cannot do its work for a reason a person must fix (not worth retrying as is)."""


@dataclass(frozen=True)
class Outcome:
    """What an automation body reports: succeeded or skipped, one sentence, and figures."""

    status: RunStatus
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    rows: int | None = None


@dataclass
class AutomationRun:
    """Handed to each body: the task context, the run id and its log."""

    ctx: TaskContext
    run_id: int
    task: str = ""
    lines: list[str] = field(default_factory=list)

    def info(self, message: str) -> None:
        log.info("run %s: %s", self.run_id, message)
        if len(self.lines) < MAX_LOG_LINES:
            self.lines.append(f"{utcnow():%H:%M:%S} {message}")


class RunBook:
    """Starts and successful ends of automation runs, batched (Core executemany).

    Many short tasks finishing at once share one transaction; each caller still waits for the
    commit of its own row. Failures take the unbatched path: they record an incident too.
    """

    def __init__(self, db: Database, linger: float = RUNBOOK_LINGER, *, keep: bool = True) -> None:
        """`keep=False` returns the connection after every write (a book used once)."""
        self.db = db
        self.keep = keep
        self.starts: MicroBatch[dict[str, Any], int] = MicroBatch(self._insert, linger=linger)
        self.ends: MicroBatch[dict[str, Any], None] = MicroBatch(self._update, linger=linger)
        self._conn: AsyncConnection | None = None
        self._lock = asyncio.Lock()

    async def _write(self, fn: Callable[[AsyncConnection], Awaitable[Any]]) -> Any:
        """One transaction on a connection kept between batches (no pool checkout and ping
        per batch); a failed one is dropped, and the error goes to the callers."""
        async with self._lock:
            if self._conn is None:
                self._conn = await self.db.engine.connect()
            try:
                async with self._conn.begin():
                    return await fn(self._conn)
            except BaseException:
                await self.close()
                raise
            finally:
                if not self.keep:
                    await self.close()

    async def _insert(self, rows: list[dict[str, Any]]) -> list[int]:
        async def write(conn: AsyncConnection) -> list[int]:
            result = await conn.execute(
                insert(JobRun).returning(JobRun.id, sort_by_parameter_order=True), rows
            )
            return [int(row[0]) for row in result]

        return list(await self._write(write))

    async def _update(self, rows: list[dict[str, Any]]) -> list[None]:
        scheduled = [
            {"b_job": r["b_job"], "b_status": r["b_status"], "b_finished_at": r["b_finished_at"]}
            for r in rows
            if r.get("b_job") is not None
        ]
        plain = [{k: v for k, v in r.items() if k != "b_job"} for r in rows]

        async def write(conn: AsyncConnection) -> None:
            await conn.execute(_FINISH, plain)
            if scheduled:  # the schedule's last run, in the same transaction as the run itself
                await conn.execute(_LAST_RUN, scheduled)

        await self._write(write)
        return [None] * len(rows)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


_LAST_RUN = (
    update(Job)
    .where(Job.id == bindparam("b_job"))
    .values(last_run_at=bindparam("b_finished_at"), last_status=bindparam("b_status"))
)
_FINISH = (
    update(JobRun)
    .where(JobRun.id == bindparam("b_id"), JobRun.status == RunStatus.RUNNING)
    .values(
        status=bindparam("b_status"),
        finished_at=bindparam("b_finished_at"),
        log=bindparam("b_log"),
        result=bindparam("b_result"),
        rows_out=bindparam("b_rows_out"),
    )
)


async def run_automation(
    ctx: TaskContext,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    job_id: int | None = None,
    scheduled_for: datetime | None = None,
    lateness: float | None = None,
) -> dict[str, Any]:
    """Run one automation body inside its JobRun; return the run's result as plain data."""
    run_id = await _start_run(ctx, name, job_id, scheduled_for, lateness)
    run = AutomationRun(ctx, run_id, name)
    if lateness is not None and lateness >= 1:
        run.info(f"started {lateness:.1f} s after its firing time {scheduled_for:%Y-%m-%d %H:%M}")
    ctx.tracker.add_run(run_id)
    deadline = asyncio.timeout(ctx.settings.worker.job_timeout)
    try:
        body = body_of(name)
        if body is None:
            raise BatchOpsError(f"there is no automation task named {name!r}.")
        async with deadline:
            outcome = await _watched(run, body(run, *args, **kwargs))
    except RunCancelled:
        run.info("cancelled by a person; the task was stopped")
        return {"run_id": run_id, "task": name, "status": RunStatus.CANCELLED.value}
    except asyncio.CancelledError:
        run.info("cancelled (worker shutting down); the job will run again")
        await asyncio.shield(_finish(run, RunStatus.CANCELLED, "CANCELLED", "cancelled"))
        raise
    except Exception as exc:
        if deadline.expired():
            code = "TASK_TIMEOUT"
            message = (
                f"{name} ran longer than the job timeout of {ctx.settings.worker.job_timeout} s."
            )
        elif is_transient(exc) and not ctx.final_try:
            run.info(f"transient failure, attempt {ctx.job_try} will be retried: {exc}")
            await _finish(run, RunStatus.FAILED, "TRANSIENT", str(exc)[:2000])
            raise TransientError(f"{name}: {exc}") from exc
        else:
            code = "TRANSIENT_EXHAUSTED" if is_transient(exc) else _code_of(exc)
            message = str(exc) or type(exc).__name__
            if not isinstance(exc, BatchOpsError | TypeError):
                log.exception("automation %s failed", name)
        run.info(f"failed: {message}")
        incident_id = await _finish(
            run, RunStatus.FAILED, code, message, job_id=job_id, incident=True
        )
        await notify_failure(
            ctx,
            job_id=job_id,
            incident_id=incident_id,
            subject=f"{name} failed",
            text=f"The task {name} (run {run_id}) failed after {ctx.job_try} attempt(s):\n\n"
            f"{code}: {message}\n\nIncident #{incident_id} records it.",
        )
        return {
            "run_id": run_id,
            "task": name,
            "status": RunStatus.FAILED.value,
            "error_code": code,
            "message": message,
            "incident_id": incident_id,
        }
    finally:
        ctx.tracker.done_run(run_id)
    run.info(outcome.message)
    await _finish_ok(run, outcome, job_id)
    return {
        "run_id": run_id,
        "task": name,
        "status": outcome.status.value,
        "message": outcome.message,
        **outcome.data,
    }


def _code_of(exc: BaseException) -> str:
    if isinstance(exc, TypeError):
        return "BAD_ARGUMENTS"
    if isinstance(exc, BatchOpsError):
        return getattr(exc, "code", None) or "TASK_FAILED"
    return "INTERNAL"


async def _start_run(
    ctx: TaskContext,
    name: str,
    job_id: int | None,
    scheduled_for: datetime | None,
    lateness: float | None,
) -> int:
    now = shared_now()
    book = ctx.runbook or RunBook(ctx.db, keep=False)
    started = book.starts.submit_nowait(
        {
            "kind": RunKind.AUTOMATION,
            "task": name[:64],
            "status": RunStatus.RUNNING,
            "attempt": ctx.job_try,
            "worker": ctx.worker,
            "arq_job_id": ctx.arq_job_id,
            "job_id": job_id,
            "scheduled_for": scheduled_for,
            "lateness_seconds": lateness,
            "started_at": now,
            "heartbeat_at": now,
            "log": [],
            "created_at": now,
        }
    )
    try:
        run_id = await asyncio.shield(started)
    except asyncio.CancelledError:
        # Cancelled while the row was being written: close it rather than leave it "running".
        with contextlib.suppress(Exception):
            orphan = await started
            await _finish(AutomationRun(ctx, orphan, name), RunStatus.CANCELLED, "CANCELLED", "")
        raise
    await events.publish(
        ctx.settings,
        events.Event(
            type="run.updated", id=run_id, status=RunStatus.RUNNING.value, data={"task": name}
        ),
    )
    return run_id


async def _finish_ok(run: AutomationRun, outcome: Outcome, job_id: int | None) -> None:
    book = run.ctx.runbook or RunBook(run.ctx.db, keep=False)
    await book.ends.submit(
        {
            "b_job": job_id,
            "b_id": run.run_id,
            "b_status": outcome.status,
            "b_finished_at": utcnow(),
            "b_log": list(run.lines),
            "b_result": outcome.data or None,
            "b_rows_out": outcome.rows,
        }
    )
    await events.publish(
        run.ctx.settings,
        events.Event(type="run.updated", id=run.run_id, status=outcome.status.value),
    )
    if job_id is not None and outcome.status in (RunStatus.SUCCEEDED, RunStatus.SKIPPED):
        await _resolve_earlier_failures(run, job_id)


async def _resolve_earlier_failures(run: AutomationRun, job_id: int) -> None:
    """Close the open incidents of this schedule's task: the next run worked (succeeded, or had
    nothing to do). Best effort: the run's success stands even if this write fails (the
    incident then waits for a person)."""
    try:
        async with run.ctx.db.unit() as session:
            resolved = await resolve_task_incidents(
                session, task=run.task, job_id=job_id, run_id=run.run_id
            )
    except Exception as exc:
        log.warning("run %s: could not resolve earlier incidents: %s", run.run_id, exc)
        return
    for incident_id in resolved:
        await events.publish(
            run.ctx.settings,
            events.Event(type="incident.updated", id=incident_id, status="resolved"),
        )


async def _finish(
    run: AutomationRun,
    status: RunStatus,
    code: str | None,
    message: str | None,
    *,
    result: dict[str, Any] | None = None,
    rows: int | None = None,
    job_id: int | None = None,
    incident: bool = False,
) -> int | None:
    """Close the run (only if still running) and, for a final failure, record the incident."""
    ctx = run.ctx
    incident_id: int | None = None
    async with ctx.db.unit() as session:
        await session.execute(
            update(JobRun)
            .where(JobRun.id == run.run_id, JobRun.status == RunStatus.RUNNING)
            .values(
                status=status,
                finished_at=utcnow(),
                error_code=code,
                error_message=message,
                log=list(run.lines),
                result=result,
                rows_out=rows,
            )
        )
        if incident:
            failure = FailureInfo(code=code or "TASK_FAILED", message=message or "failed")
            incident_id = await record_task_failure(
                session,
                task=run.task or "task",
                failure=failure,
                job_id=job_id,
                run_id=run.run_id,
                settings=ctx.settings,
            )
    await events.publish(
        ctx.settings, events.Event(type="run.updated", id=run.run_id, status=status.value)
    )
    if incident_id is not None:
        await events.publish(
            ctx.settings, events.Event(type="incident.updated", id=incident_id, status="open")
        )
    return incident_id


async def notify_failure(
    ctx: TaskContext,
    *,
    job_id: int | None,
    incident_id: int | None,
    subject: str,
    text: str,
) -> list[str]:
    """Email the schedule's owner, else the incident's assignee; return who was mailed.

    Called only once no retry follows. A missing SMTP configuration or a refused message is
    logged, never raised: the incident is already the record.
    """
    async with ctx.db.unit() as session:
        user_id: int | None = None
        if job_id is not None:
            user_id = await session.scalar(select(Job.owner_id).where(Job.id == job_id))
        if user_id is None and incident_id is not None:
            user_id = await session.scalar(
                select(Incident.assignee_id).where(Incident.id == incident_id)
            )
        email = None
        if user_id is not None:
            email = await session.scalar(
                select(User.email).where(User.id == user_id, User.active.is_(True))
            )
    if not email:
        return []
    if not ctx.settings.smtp.host:
        log.warning("not mailing %s about %r: [smtp] host is not configured", email, subject)
        return []
    try:
        await send_mail(ctx.settings, to=[email], subject=subject, text=text)
    except MailError as exc:
        log.warning("failure notice to %s not sent: %s", email, exc)
        return []
    return [email]
