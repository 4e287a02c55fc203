"""arq job functions: thin wrappers that run the core task bodies with a per-job TaskContext.

A `TransientError` from a body becomes arq's `Retry` with exponential backoff, so the same job
runs again (its try counted by arq) until `worker.max_tries`; the body itself turns the final
try's failure into an incident, so arq never retries a data failure.

While the daemon knows the database is away (`READY_KEY` cleared), a job that was taken waits for
it before its body runs, instead of burning its tries on connection errors; arq's own timeout
bounds the wait, and a job that gives up leaves its upload `queued` for the sweeper's rescan. The
job id is listed in the worker's tracker while the job runs, so the liveness key tells a sweeper
which arq jobs this (live) worker holds.
"""

from __future__ import annotations

import asyncio
from typing import Any

from arq import Retry
from arq.worker import Function, func

from batchops_core.worker.context import TaskContext
from batchops_core.worker.retry import TransientError, backoff_seconds, is_transient
from batchops_core.worker.tasks import TASKS, TaskFn

CTX_KEY = "batchops"
BACKOFF_KEY = "batchops_backoff"
READY_KEY = "batchops_database_up"


def _wrap(name: str, body: TaskFn) -> Any:
    async def job(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        base: TaskContext = ctx[CTX_KEY]
        job_id = ctx.get("job_id")
        task_ctx = base.for_job(job_try=int(ctx.get("job_try", 1)), arq_job_id=job_id)
        if job_id:
            base.tracker.jobs.add(job_id)
        try:
            ready: asyncio.Event | None = ctx.get(READY_KEY)
            if ready is not None and not ready.is_set():
                await ready.wait()
            return await body(task_ctx, *args, **kwargs)
        except Exception as exc:
            if task_ctx.final_try or not (isinstance(exc, TransientError) or is_transient(exc)):
                raise
            delay = backoff_seconds(task_ctx.job_try, ctx.get(BACKOFF_KEY, 2.0))
            raise Retry(defer=delay) from exc
        finally:
            if job_id:
                base.tracker.jobs.discard(job_id)

    job.__name__ = name
    job.__qualname__ = name
    return job


def arq_functions(job_timeout: int) -> list[Function]:
    """Every core task as an arq Function; arq's timeout leaves the core's own one room to act."""
    return [
        func(_wrap(name, body), name=name, timeout=job_timeout + 30) for name, body in TASKS.items()
    ]
