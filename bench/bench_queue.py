"""Queue overhead: N no-op tasks through BatchOps' dispatch path against raw arq, same run.

BatchOps' path is everything a real task pays: `Dispatcher.enqueue`, the daemon's arq worker, a
JobRun written when the task starts and closed when it ends (two transactions), two events on
Redis, the heartbeat, sweeper and schedule loops running beside it. Raw arq runs a bare
`async def noop(ctx)` with the same worker settings on the same Redis. Both drain in burst mode;
the figure is jobs per second from the first job picked to the queue empty. Goal: ≤ 2×.

    python -m bench.bench_queue            # PostgreSQL when reachable, else SQLite; N=5000
    BENCH_N=2000 BENCH_DB=sqlite python -m bench.bench_queue
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from arq import create_pool
from arq.worker import Worker, func
from redis.asyncio import Redis
from sqlalchemy import func as sql_func
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from batchops_core.enums import RunStatus
from batchops_core.infra import events
from batchops_core.infra.config import RedisSettings, Settings, StorageSettings, WorkerSettings
from batchops_core.infra.db import Database, open_database
from batchops_core.infra.migrate import upgrade
from batchops_core.models import JobRun
from batchops_core.worker.arq_settings import arq_redis_settings, queue_name
from batchops_core.worker.dispatcher import Dispatcher
from batchops_daemon.service import Daemon

N = int(os.environ.get("BENCH_N", "5000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
PG_ADMIN = os.environ.get(
    "BATCHOPS_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("BATCHOPS_TEST_REDIS", "redis://127.0.0.1:6379/0")


async def _pg_exec(statement: str) -> None:
    engine = create_async_engine(
        PG_ADMIN, isolation_level="AUTOCOMMIT", connect_args={"timeout": 3}
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@asynccontextmanager
async def environment(
    max_jobs: int = 100, storage: StorageSettings | None = None
) -> AsyncIterator[tuple[Settings, Database]]:
    """A migrated scratch database (PostgreSQL if reachable) and a private Redis prefix; files in
    `storage` when given (an S3 bucket), else in the temporary data directory."""
    tmp = Path(tempfile.mkdtemp(prefix="bo-bench-"))
    prefix = f"bo-bench-{uuid.uuid4().hex[:8]}"
    want = os.environ.get("BENCH_DB", "postgresql")
    url, pg_name = f"sqlite+aiosqlite:///{tmp / 'bench.db'}", None
    if want == "postgresql":
        try:
            pg_name = f"bo_bench_{uuid.uuid4().hex[:8]}"
            await _pg_exec(f'CREATE DATABASE "{pg_name}"')
            url = PG_ADMIN.rsplit("/", 1)[0] + f"/{pg_name}"
        except Exception as exc:  # fall back to SQLite, say so
            print(f"PostgreSQL not reachable ({exc}); using SQLite")
            pg_name = None
    settings = Settings(
        data_dir=str(tmp / "data"),
        redis=RedisSettings(url=REDIS_URL, prefix=prefix),
        worker=WorkerSettings(
            max_jobs=max_jobs, poll_delay=0.05, heartbeat_seconds=5, metrics_port=-1
        ),
    )
    settings = dataclasses.replace(
        settings,
        database=dataclasses.replace(settings.database, url=url),
        storage=storage or settings.storage,
    )
    db = open_database(settings)
    await upgrade(db)
    try:
        yield settings, db
    finally:
        await db.dispose()
        await events.close()
        client = Redis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(f"*{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
        if pg_name:
            await _pg_exec(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def write_config(settings: Settings, path: Path) -> Path:
    """A config.toml reproducing `settings`, for daemon subprocesses."""
    w = settings.worker
    lines = [
        f'data_dir = "{settings.data_dir}"',
        f'[database]\nurl = "{settings.database.url}"',
        f'[redis]\nurl = "{settings.redis.url}"\nprefix = "{settings.redis.prefix}"',
        "[worker]",
        *(f"{f.name} = {getattr(w, f.name)!r}".replace("'", '"') for f in dataclasses.fields(w)),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """`batchops-daemon --config …` as a subprocess, output to `log`."""
    out = open(log, "wb")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "batchops_daemon.main",
            "--config",
            str(config),
            "--log-level",
            "WARNING",
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def stop_daemon(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def noop(ctx: dict[str, Any]) -> None:
    return None


async def raw_arq(settings: Settings, n: int) -> tuple[float, float]:
    q = queue_name(settings) + f":raw{time.monotonic_ns()}"
    pool = await create_pool(arq_redis_settings(settings), default_queue_name=q)
    started = time.perf_counter()
    for _ in range(n):
        await pool.enqueue_job("noop")
    enqueue = time.perf_counter() - started
    w = settings.worker
    worker = Worker(
        functions=[func(noop, name="noop")],
        queue_name=q,
        redis_pool=pool,
        burst=True,
        poll_delay=w.poll_delay,
        max_jobs=w.max_jobs,
        job_timeout=w.job_timeout,
        max_tries=w.max_tries,
        keep_result=0,
        handle_signals=False,
        log_results=False,
    )
    started = time.perf_counter()
    await worker.main()
    drain = time.perf_counter() - started
    assert worker.jobs_complete == n, worker.jobs_complete
    await pool.aclose()
    return enqueue, drain


async def batchops_path(settings: Settings, db: Database, n: int) -> tuple[float, float]:
    dispatcher = await Dispatcher.connect(db, settings)
    started = time.perf_counter()
    for _ in range(n):
        await dispatcher.enqueue("noop")
    enqueue = time.perf_counter() - started
    await dispatcher.close()
    async with db.unit() as session:
        before = await session.scalar(select(sql_func.count(JobRun.id))) or 0
    daemon = Daemon(settings, db, metrics_port=-1)
    started = time.perf_counter()
    status = await daemon.run_arq(burst=True)
    drain = time.perf_counter() - started
    assert status == 0
    async with db.unit() as session:
        done = await session.scalar(
            select(sql_func.count(JobRun.id)).where(
                JobRun.task == "noop", JobRun.status == RunStatus.SUCCEEDED
            )
        )
    assert done == before + n, f"{done - before} of {n} runs recorded"
    return enqueue, drain


async def main() -> int:
    rows = []
    async with environment() as (settings, db):
        backend = db.url.get_backend_name()
        print(
            f"{N} no-op jobs x {ROUNDS} alternating rounds, max_jobs {settings.worker.max_jobs}, "
            f"poll_delay {settings.worker.poll_delay}, database {backend}"
        )
        for _ in range(ROUNDS):
            raw_enq, raw_drain = await raw_arq(settings, N)
            bo_enq, bo_drain = await batchops_path(settings, db, N)
            rows.append((raw_enq, raw_drain, bo_enq, bo_drain))
    print(f"{'round':<6} {'raw jobs/s':>10} {'BatchOps jobs/s':>16} {'ratio':>6}")
    ratios = []
    for i, (_, raw_drain, _, bo_drain) in enumerate(rows, 1):
        ratios.append(bo_drain / raw_drain)
        print(f"{i:<6} {N / raw_drain:>10.0f} {N / bo_drain:>16.0f} {ratios[-1]:>5.2f}x")
    enq_raw = sum(N / r[0] for r in rows) / len(rows)
    enq_bo = sum(N / r[2] for r in rows) / len(rows)
    ratio = statistics.median(ratios)
    print(f"enqueue: raw {enq_raw:.0f}/s, BatchOps Dispatcher {enq_bo:.0f}/s")
    print(
        f"median ratio BatchOps/raw (drain time): {ratio:.2f}x  (goal <= 2x) "
        f"{'MET' if ratio <= 2 else 'NOT MET'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
