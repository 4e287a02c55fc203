"""Dispatcher: sends tasks to arq on Redis, or runs them in this process when there is no Redis.

The embedded mode is what makes one-command use possible: the TUI or CLI on SQLite processes
uploads itself. Both modes run the same task bodies from `batchops_core.tasks`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

from arq import ArqRedis, create_pool
from arq.connections import RedisSettings

from batchops_core.config import Settings
from batchops_core.db import Database
from batchops_core.tasks import TASKS, TaskContext

log = logging.getLogger(__name__)


def queue_name(settings: Settings) -> str:
    return f"{settings.redis.prefix}:queue"


def arq_redis_settings(settings: Settings) -> RedisSettings:
    redis = RedisSettings.from_dsn(settings.redis.url)
    redis.conn_timeout = max(1, int(settings.redis.connect_timeout))
    redis.conn_retries = 1
    return redis


class Dispatcher:
    """Enqueue work by task name; `embedded` runs it on this event loop's in-process worker."""

    def __init__(self, db: Database, settings: Settings, pool: ArqRedis | None = None) -> None:
        self.db = db
        self.settings = settings
        self.pool = pool
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ctx = TaskContext(
            db=db, settings=settings, worker=f"embedded@{socket.gethostname()}:{os.getpid()}"
        )

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

    async def enqueue(self, task: str, *args: Any, job_id: str | None = None) -> str | None:
        """Queue one task; returns the job id, or None when arq already holds that job id."""
        if task not in TASKS:
            raise KeyError(f"unknown task {task!r}")
        if self.pool is not None:
            job = await self.pool.enqueue_job(task, *args, _job_id=job_id)
            return job.job_id if job else None
        running = asyncio.create_task(self._run_embedded(task, args))
        self._tasks.add(running)
        running.add_done_callback(self._tasks.discard)
        return job_id or f"embedded:{id(running)}"

    async def _run_embedded(self, task: str, args: tuple[Any, ...]) -> Any:
        try:
            return await TASKS[task](self._ctx, *args)
        except Exception:
            log.exception("embedded task %s%r failed", task, args)
            return None

    async def wait_idle(self) -> None:
        """Wait for every embedded task started so far (and those they start) to finish."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.wait_idle()
        if self.pool is not None:
            await self.pool.aclose()
