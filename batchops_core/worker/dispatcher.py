"""Dispatcher: sends tasks to arq on Redis, or runs them in this process when there is no Redis.

The embedded mode is what makes one-command use possible: the TUI or CLI on SQLite processes
uploads itself. Both modes run the same task bodies from `batchops_core.worker.tasks`, with the same
retry rule (a `TransientError` is retried with backoff up to `worker.max_tries`), and the embedded
worker heart-beats while it has work so a daemon's sweeper never mistakes its runs for lost ones.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from arq import ArqRedis, create_pool

from batchops_core.cron import firing_job_id
from batchops_core.enums import Stage
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.worker.arq_settings import arq_redis_settings, queue_name
from batchops_core.worker.automation.frame import RunBook
from batchops_core.worker.automation.registry import AUTOMATIONS
from batchops_core.worker.context import TaskContext
from batchops_core.worker.heartbeat import Heartbeat, WorkTracker, worker_name
from batchops_core.worker.retry import (
    RETRY_BACKOFF_SECONDS,
    TransientError,
    backoff_seconds,
    is_transient,
)
from batchops_core.worker.tasks import PROCESS_UPLOAD, RETRY_UPLOAD, RUN_SCHEDULE, TASKS

log = logging.getLogger(__name__)


class Dispatcher:
    """Enqueue work by task name; `embedded` runs it on this event loop's in-process worker."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        pool: ArqRedis | None = None,
        *,
        worker: str | None = None,
        owns_pool: bool = True,
        retry_backoff: float = RETRY_BACKOFF_SECONDS,
        heartbeat: bool = True,
    ) -> None:
        """`heartbeat=False` when the owner (the daemon) already beats for this worker name."""
        self.db = db
        self.settings = settings
        self.pool = pool
        self.owns_pool = owns_pool
        self.retry_backoff = retry_backoff
        self._tasks: set[asyncio.Task[Any]] = set()
        self.tracker = WorkTracker()
        self.context = TaskContext(
            db=db,
            settings=settings,
            worker=worker or worker_name("embedded"),
            dispatcher=self,
            tracker=self.tracker,
            runbook=RunBook(db),
        )
        self._heartbeat: Heartbeat | None = None
        self._beats = heartbeat

    @property
    def embedded(self) -> bool:
        return self.pool is None

    @classmethod
    async def connect(cls, db: Database, settings: Settings) -> Dispatcher:
        """Use arq when Redis is configured, else the embedded worker."""
        if not settings.uses_redis:
            return cls(db, settings)
        pool = await create_pool(
            arq_redis_settings(settings), default_queue_name=queue_name(settings)
        )
        return cls(db, settings, pool)

    async def enqueue(
        self,
        task: str,
        *args: Any,
        job_id: str | None = None,
        defer_seconds: float | None = None,
        **kwargs: Any,
    ) -> str | None:
        """Queue one task by name (the typed methods above are the way in for callers); returns
        the job id, or None when arq already holds that job id."""
        if task not in TASKS:
            raise KeyError(f"unknown task {task!r}")
        if self.pool is not None:
            defer = timedelta(seconds=defer_seconds) if defer_seconds else None
            job = await self.pool.enqueue_job(
                task, *args, _job_id=job_id, _defer_by=defer, **kwargs
            )
            return job.job_id if job else None
        self._start_heartbeat()
        running = asyncio.create_task(self._run_embedded(task, args, kwargs, defer_seconds))
        self._tasks.add(running)
        running.add_done_callback(self._tasks.discard)
        return job_id or f"embedded:{id(running)}"

    # ------------------------------------------------------------------ typed entry points

    async def process_upload(self, upload_id: int, *, job_id: str | None = None) -> str | None:
        """Run the pipeline on a queued upload."""
        return await self.enqueue(PROCESS_UPLOAD, upload_id, job_id=job_id)

    async def retry_upload(
        self,
        upload_id: int,
        stage: Stage | None,
        incident_id: int | None = None,
        *,
        job_id: str | None = None,
        defer_seconds: float | None = None,
    ) -> str | None:
        """Run a re-queued upload again from `stage` (None: from its first unfinished stage)."""
        args: tuple[Any, ...] = (upload_id, stage.value if stage else None)
        if incident_id is not None:
            args += (incident_id,)
        return await self.enqueue(RETRY_UPLOAD, *args, job_id=job_id, defer_seconds=defer_seconds)

    async def run_schedule(self, schedule_id: int, scheduled_for: datetime) -> str | None:
        """Fire one schedule once; the job id names the firing, so a second enqueue is a no-op."""
        return await self.enqueue(
            RUN_SCHEDULE,
            schedule_id,
            scheduled_for.isoformat(),
            job_id=firing_job_id(schedule_id, scheduled_for, prefix=self.settings.redis.prefix),
        )

    async def process_upload_now(self, upload_id: int) -> Any:
        """Run the pipeline on an upload in this process and wait (`--once`, embedded)."""
        return await self.run_now(PROCESS_UPLOAD, upload_id)

    async def run_schedule_now(self, schedule_id: int, scheduled_for: str) -> Any:
        """Fire one schedule in this process and wait for its result (`--once`)."""
        return await self.run_now(RUN_SCHEDULE, schedule_id, scheduled_for)

    async def run_automation(self, task: str, /, **arguments: Any) -> str | None:
        """Start one automation task of the catalogue outside its schedule."""
        if task not in AUTOMATIONS:
            raise KeyError(f"unknown automation task {task!r}")
        return await self.enqueue(task, **arguments)

    def _start_heartbeat(self) -> None:
        if not self._beats:
            return
        if self._heartbeat is None:
            self._heartbeat = Heartbeat(
                self.db, self.settings, self.context.worker, tracker=self.tracker, embedded=True
            )
        self._heartbeat.start()

    async def _run_embedded(
        self, task: str, args: tuple[Any, ...], kwargs: dict[str, Any], defer: float | None
    ) -> Any:
        if defer:
            await asyncio.sleep(defer)
        job_try = 1
        while True:
            ctx = self.context.for_job(job_try=job_try, arq_job_id=None)
            try:
                return await TASKS[task](ctx, *args, **kwargs)
            except Exception as exc:
                if not (isinstance(exc, TransientError) or is_transient(exc)):
                    log.exception("embedded task %s%r failed", task, args)
                    return None
                if job_try >= self.settings.worker.max_tries:
                    log.error(
                        "embedded task %s%r gave up after %d tries: %s", task, args, job_try, exc
                    )
                    return None
                delay = backoff_seconds(job_try, self.retry_backoff)
                log.warning("embedded task %s%r: %s; retry in %.1f s", task, args, exc, delay)
                await asyncio.sleep(delay)
                job_try += 1

    async def run_now(self, task: str, *args: Any, **kwargs: Any) -> Any:
        """Run one task in this process and wait for its result (used by `--once`)."""
        self._start_heartbeat()
        running = asyncio.create_task(self._run_embedded(task, args, kwargs, None))
        self._tasks.add(running)
        running.add_done_callback(self._tasks.discard)
        return await running

    @property
    def running(self) -> int:
        """Embedded tasks not finished yet."""
        return sum(not t.done() for t in self._tasks)

    async def cancel_running(self) -> None:
        """Cancel the embedded tasks (uploads are handed back to `queued`) and wait for them."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def wait_idle(self) -> None:
        """Wait for every embedded task started so far (and those they start) to finish."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.wait_idle()
        if self._heartbeat is not None:
            await self._heartbeat.stop()
            self._heartbeat = None
        if self.context.runbook is not None:
            await self.context.runbook.close()
        if self.pool is not None and self.owns_pool:
            await self.pool.aclose()
