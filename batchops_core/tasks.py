"""Task bodies shared by the arq worker (daemon) and the embedded in-process worker.

Tasks take ids and plain JSON values, never objects, so that any worker can run any job and a
repeated run (at-least-once delivery) finds the database as the record of what already happened.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from batchops_core.config import Settings
from batchops_core.db import Database


@dataclass
class TaskContext:
    """What every task body needs; arq's `ctx` dict carries one under the key `"batchops"`."""

    db: Database
    settings: Settings
    worker: str


TaskFn = Callable[..., Awaitable[Any]]


async def process_upload(ctx: TaskContext, upload_id: int) -> dict[str, Any]:
    """Run the five pipeline stages for one upload."""
    from batchops_core.pipeline.runner import run_upload

    outcome = await run_upload(ctx.db, ctx.settings, upload_id, worker=ctx.worker)
    return outcome.as_dict()


TASKS: dict[str, TaskFn] = {"process_upload": process_upload}
