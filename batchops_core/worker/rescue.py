"""Work that sits in arq but that no live worker will run: rescued within seconds.

Two cases the database alone cannot see:

* **Jobs a killed worker took but had not claimed.** arq guards a picked job with
  `arq:in-progress:<id>` for `job_timeout` + 40 s; until that expires no other worker touches it.
  Every worker lists the arq job ids it holds in its liveness key (`liveness.py`), so a job that is
  in progress for more than `GRACE` seconds and that no live worker lists belongs to a dead one:
  it is enqueued again under a new, deterministic job id (`<prefix>:rescue:<old id>`, so two
  sweepers enqueue it once) and the old job is removed.
* **Queued uploads without any job** (a Redis restart emptied the queue, a job gave up during a
  database outage): the upload ids of every job in the queue are read back, and a `queued` upload
  seen uncovered on two passes `GRACE` seconds apart (an intake commits before it enqueues) is
  enqueued again as `<prefix>:requeue:<id>:<attempt>`.

Re-running is always safe: the runner claims an upload by a conditional UPDATE.
This is the one module that reads arq's keys directly.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix
from arq.jobs import deserialize_job_raw
from sqlalchemy import select

from batchops_core.enums import UploadStatus
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Upload
from batchops_core.worker.arq_settings import queue_name

if TYPE_CHECKING:
    from arq import ArqRedis

log = logging.getLogger(__name__)

GRACE = 2.0
"""Seconds a job must be in progress (or an upload uncovered) before it counts as orphaned."""
RESCAN_EVERY = 2.0
MAX_SCAN = 5000
"""Queues longer than this are a backlog, not lost work: the rescan is skipped."""
UPLOAD_TASKS = ("process_upload", "retry_upload")


@dataclass
class RescueState:
    """What a sweeper remembers between passes."""

    uncovered: dict[int, float] = field(default_factory=dict)
    last_rescan: float = 0.0


def _in_progress_ms(settings: Settings) -> int:
    """arq's in-progress lifetime for our functions (timeout job_timeout + 30, plus its 10 s)."""
    return (settings.worker.job_timeout + 40) * 1000


async def _held_by_live_workers(pool: ArqRedis, settings: Settings) -> set[str]:
    held: set[str] = set()
    keys = [k async for k in pool.scan_iter(match=f"{settings.redis.prefix}:alive:*", count=500)]
    if not keys:
        return held
    for raw in await pool.mget(keys):
        if raw is None:
            continue
        try:
            held.update(str(j) for j in json.loads(raw).get("jobs", []))
        except (ValueError, TypeError, AttributeError):
            continue
    return held


def _job_args(raw: bytes) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    function, args, kwargs, _try, _enqueued = deserialize_job_raw(raw)
    return function, tuple(args), dict(kwargs)


async def rescue_orphaned_jobs(
    pool: ArqRedis, settings: Settings, *, skip_uploads: set[int] | frozenset[int] = frozenset()
) -> list[str]:
    """Re-enqueue jobs held in progress by dead workers; return the new job ids.

    Only call this when Redis has been up long enough that a missing liveness key means a dead
    worker (`LivenessJudge.redis_trusted`). Upload jobs of `skip_uploads` (just enqueued again by
    the run-based sweep) are removed without a new job.
    """
    queue = queue_name(settings)
    lifetime = _in_progress_ms(settings)
    held: set[str] | None = None
    rescued: list[str] = []
    async for key in pool.scan_iter(match=f"{in_progress_key_prefix}*", count=500):
        name = key.decode() if isinstance(key, bytes) else str(key)
        job_id = name[len(in_progress_key_prefix) :]
        if await pool.zscore(queue, job_id) is None:
            continue  # another deployment's queue, or finished meanwhile
        left = await pool.pttl(key)
        if left < 0 or lifetime - left < GRACE * 1000:
            continue
        if held is None:
            held = await _held_by_live_workers(pool, settings)
        if job_id in held:
            continue
        raw = await pool.get(job_key_prefix + job_id)
        new_id = None
        if raw is not None:
            function, args, kwargs = _job_args(raw)
            skip = function in UPLOAD_TASKS and args and int(args[0]) in skip_uploads
            if not skip:
                new_id = f"{settings.redis.prefix}:rescue:{job_id}"
                await pool.enqueue_job(function, *args, _job_id=new_id, **kwargs)
        async with pool.pipeline(transaction=True) as pipe:
            pipe.zrem(queue, job_id)
            pipe.delete(key, job_key_prefix + job_id, retry_key_prefix + job_id)
            await pipe.execute()
        log.warning("rescued job %s of a dead worker%s", job_id, f" as {new_id}" if new_id else "")
        if new_id:
            rescued.append(new_id)
    return rescued


async def _covered_uploads(pool: ArqRedis, settings: Settings) -> set[int] | None:
    """Upload ids of every upload job in the queue; None when the queue is a long backlog."""
    queue = queue_name(settings)
    if await pool.zcard(queue) > MAX_SCAN:
        return None
    ids = [j.decode() if isinstance(j, bytes) else str(j) for j in await pool.zrange(queue, 0, -1)]
    covered: set[int] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for raw in await pool.mget([job_key_prefix + j for j in chunk]):
            if raw is None:
                continue
            try:
                function, args, _kwargs = _job_args(raw)
            except Exception:  # a job another version wrote: not ours to judge
                continue
            if function in UPLOAD_TASKS and args:
                covered.add(int(args[0]))
    return covered


async def requeue_uncovered(
    db: Database, pool: ArqRedis, settings: Settings, state: RescueState
) -> list[tuple[int, str]]:
    """(upload id, job id) of queued uploads no job in arq will run; the caller enqueues them."""
    now = time.monotonic()
    if now - state.last_rescan < RESCAN_EVERY:
        return []
    state.last_rescan = now
    async with db.unit() as session:
        queued = dict(
            (
                await session.execute(
                    select(Upload.id, Upload.attempt)
                    .where(Upload.status == UploadStatus.QUEUED)
                    .order_by(Upload.id)
                    .limit(MAX_SCAN)
                )
            ).all()
        )
    if not queued:
        state.uncovered.clear()
        return []
    covered = await _covered_uploads(pool, settings)
    if covered is None:
        return []
    uncovered = set(queued) - covered
    state.uncovered = {u: state.uncovered.get(u, now) for u in uncovered}
    due = sorted(u for u, seen in state.uncovered.items() if now - seen >= GRACE)
    for upload_id in due:
        state.uncovered.pop(upload_id, None)
    prefix = settings.redis.prefix
    return [(u, f"{prefix}:requeue:{u}:{queued[u]}") for u in due]
