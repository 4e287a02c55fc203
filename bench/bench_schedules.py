"""Schedule precision: 500 schedules due at the same instant, fired by three daemon processes.

Every schedule (task `noop`) gets `next_run_at` = a few seconds ahead; three `batchops-daemon`
processes dispatch from the database. Lag = JobRun.started_at − scheduled_for (what the run
records as `lateness_seconds`). Also checked: each firing ran exactly once across the daemons.
Baseline in the same run: the dispatcher's poll interval (1 s) — the lag a single firing may
wait before any daemon sees it.

    python -m bench.bench_schedules       # 500 schedules, 3 daemons
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from batchops_core.infra.clock import utcnow
from batchops_core.models import Job, JobRun, WorkerHeartbeat
from batchops_core.worker.dispatch_loop import DEFAULT_INTERVAL
from bench.bench_events import pct
from bench.bench_queue import environment, start_daemon, stop_daemon, write_config

N = int(os.environ.get("BENCH_N", "500"))
DAEMONS = int(os.environ.get("BENCH_DAEMONS", "3"))
WARM = 10.0
"""Seconds given to the daemons after they report alive: each starts its pipeline process pool
(pandas imports) right away, and on two cores three warming daemons starve everything else."""


async def main() -> int:
    async with environment(max_jobs=100) as (settings, db):
        tmp = Path(tempfile.mkdtemp(prefix="bo-bench-sched-"))
        config = write_config(settings, tmp / "config.toml")
        procs = [start_daemon(config, tmp / f"daemon{k}.log") for k in range(DAEMONS)]
        while True:
            async with db.unit() as session:
                alive = await session.scalar(select(func.count()).select_from(WorkerHeartbeat))
            if alive >= DAEMONS:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(WARM)  # let the daemons finish warming their pipeline pools
        due = (utcnow() + timedelta(seconds=3)).replace(microsecond=0)
        async with db.engine.begin() as conn:
            await conn.execute(
                insert(Job),
                [
                    {
                        "name": f"bench-{i}",
                        "task": "noop",
                        "arguments": {},
                        "cron": "* * * * *",
                        "timezone": "UTC",
                        "enabled": True,
                        "next_run_at": due,
                    }
                    for i in range(N)
                ],
            )
        deadline = time.monotonic() + 120
        runs: list[tuple[int, float | None]] = []
        while time.monotonic() < deadline:
            async with db.unit() as session:
                runs = list(
                    (
                        await session.execute(
                            select(JobRun.job_id, JobRun.lateness_seconds).where(
                                JobRun.scheduled_for == due, JobRun.status == "succeeded"
                            )
                        )
                    ).all()
                )
            if len(runs) >= N:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)  # a duplicate firing would land now
        async with db.unit() as session:
            total = await session.scalar(
                select(func.count(JobRun.id)).where(JobRun.scheduled_for == due)
            )
            workers = await session.scalar(
                select(func.count(func.distinct(JobRun.worker))).where(JobRun.scheduled_for == due)
            )
            spread = (
                await session.execute(
                    select(
                        JobRun.worker,
                        func.count(JobRun.id),
                        func.min(JobRun.lateness_seconds),
                        func.max(JobRun.lateness_seconds),
                    )
                    .where(JobRun.scheduled_for == due)
                    .group_by(JobRun.worker)
                )
            ).all()
        for proc in procs:
            stop_daemon(proc)
        for worker, count, low, high in spread:
            print(f"  {worker}: {count} runs, lag {low:.2f}-{high:.2f} s")
    lags = [float(lag or 0.0) for _, lag in runs]
    once = total == N and len({job for job, _ in runs}) == N
    print(f"{N} schedules due at one instant, {DAEMONS} daemons (runs spread over {workers})")
    print(f"fired {len(runs)}/{N}, run rows {total}: {'each exactly once' if once else 'NOT ONCE'}")
    print(
        f"lag p50 {statistics.median(lags):.3f} s, p99 {pct(lags, 99):.3f} s, "
        f"max {max(lags):.3f} s (dispatcher poll interval {DEFAULT_INTERVAL:.1f} s; "
        f"p99/interval {pct(lags, 99) / DEFAULT_INTERVAL:.2f}x)"
    )
    return 0 if once else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
