"""Tiny uploads per second end to end, with one and with two `batchops-daemon` processes.

Each round stores N tiny CSV files through intake (the real `intake_file`), enqueues them, starts
the daemon(s) and times until every upload is published: the whole pipeline (five stages in the
process pool, reports, run rows, events). Two daemons on a 2-core machine share the same cores,
PostgreSQL and Redis, so expect well under 2× — the figure shows the scale-out works, not that
the machine grew.

    python -m bench.bench_queue_uploads        # N=100 per round
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select, update

from batchops_core.enums import RunStatus, UploadStatus
from batchops_core.infra.db import Database
from batchops_core.models import JobRun, Upload, WorkerHeartbeat
from batchops_core.permissions import SYSTEM
from batchops_core.services.uploads import intake_file
from batchops_core.worker.dispatcher import Dispatcher
from bench.bench_queue import environment, start_daemon, stop_daemon, write_config

N = int(os.environ.get("BENCH_N", "100"))


async def _set_status(db: Database, ids: list[int], status: UploadStatus) -> None:
    async with db.unit() as session:
        await session.execute(update(Upload).where(Upload.id.in_(ids)).values(status=status))


async def round_(daemons: int) -> tuple[float, int]:
    async with environment(max_jobs=10) as (settings, db):
        tmp = Path(tempfile.mkdtemp(prefix="bo-bench-up-"))
        ids = []
        for i in range(N):
            path = tmp / f"class{i}.csv"
            rows = "".join(f"S{i:03d}{j:02d},9A,{40 + j},{50 + j}\n" for j in range(20))
            path.write_text("Student ID,class,maths,english\n" + rows)
            ids.append((await intake_file(db, settings, SYSTEM, path, source="Exams")).id)
        # Parked until the clock starts: a daemon's sweeper enqueues a `queued` upload that no
        # arq job covers within ~4 s (worker/rescue.py), which would run them during the warm-up.
        await _set_status(db, ids, UploadStatus.CANCELLED)
        config = write_config(settings, tmp / "config.toml")
        procs = [start_daemon(config, tmp / f"daemon{k}.log") for k in range(daemons)]
        while True:  # measure from the moment every daemon reported alive
            async with db.unit() as session:
                alive = await session.scalar(select(func.count()).select_from(WorkerHeartbeat))
            if alive >= daemons:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(10)  # the daemons warm their pipeline pools meanwhile
        dispatcher = await Dispatcher.connect(db, settings)
        started = time.perf_counter()
        await _set_status(db, ids, UploadStatus.QUEUED)
        for upload_id in ids:
            await dispatcher.enqueue("process_upload", upload_id)
        await dispatcher.close()
        done = 0
        while time.perf_counter() - started < 900:
            async with db.unit() as session:
                done = (
                    await session.scalar(
                        select(func.count(Upload.id)).where(Upload.status == UploadStatus.PUBLISHED)
                    )
                    or 0
                )
            if done >= N:
                break
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - started
        for proc in procs:
            stop_daemon(proc)
        async with db.unit() as session:
            runs = await session.scalar(
                select(func.count(JobRun.id)).where(JobRun.status == RunStatus.SUCCEEDED)
            )
        assert runs == N, f"{runs} succeeded runs for {N} uploads (duplicates?)"
        return elapsed, done


async def main() -> int:
    print(f"{N} tiny uploads (20 rows each), max_jobs 10 per daemon")
    results = {}
    for daemons in (1, 2):
        elapsed, done = await round_(daemons)
        results[daemons] = N / elapsed
        print(
            f"{daemons} daemon(s): {done}/{N} published in {elapsed:.1f} s = "
            f"{N / elapsed:.1f} uploads/s"
        )
    print(f"ratio 2 daemons / 1 daemon: {results[2] / results[1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
