"""Campus scaling: uploads/s and rows/s with 1, 2 and 3 daemons on one queue, against the S3
store; and what the object store costs a 100 MB upload against the local disk, same run.

(a) Each round gets a fresh PostgreSQL database, Redis prefix and moto S3 bucket (moto's server
mode, a real HTTP S3 endpoint on this machine). N CSV files of R rows are stored through the real
intake (`intake_file`: streamed into the bucket, sha256, row), then 1, 2 or 3 `batchops-daemon`
processes — each with its own data directory, configured by environment like separate hosts — run
them: every upload's source is fetched from the bucket into that daemon's scratch, five stages
in its process pool, CSV and PDF reports put back under `exports/<id>/`. Before timing, a warm-up
batch runs until every daemon has finished an upload (its pool and connections are warm). Timed
from the first enqueue to the last `published`; asserted: one succeeded run per upload.

(b) One 100 MB CSV through intake (`intake_file`) and the pipeline's read of its source
(`local_copy`, what `scratch.materialize` calls before the first stage) on the local store and on
the S3 store, best of two, same run. On the local store the read is the stored file itself; on
S3 it is a streamed download checked against the sha256.

    python -m bench.bench_campus                       # N=60 uploads of R=20 rows
    BENCH_N=24 BENCH_ROWS=20000 python -m bench.bench_campus
    BENCH_SKIP_LARGE=1 python -m bench.bench_campus    # (a) only
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import func, select

from batchops_core.enums import RunStatus, UploadStatus
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import JobRun, Upload
from batchops_core.permissions import SYSTEM
from batchops_core.services.uploads import intake_file
from batchops_core.storage import open_store
from batchops_core.worker.dispatcher import Dispatcher
from bench._common import load_note
from bench.bench_queue import environment as queue_environment
from tests.s3server import S3Server, make_bucket, storage_env, storage_settings

N = int(os.environ.get("BENCH_N", "60"))
ROWS = int(os.environ.get("BENCH_ROWS", "20"))
DAEMONS = (1, 2, 3)
LARGE_MB = 100
ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@asynccontextmanager
async def environment(server: S3Server) -> AsyncIterator[tuple[Settings, Database, Path]]:
    """bench_queue's fresh database and Redis prefix, with a fresh bucket as the store; the
    temporary folder (the daemons' homes) goes with it."""
    bucket = storage_settings(server, make_bucket(server), "campus")
    async with queue_environment(max_jobs=10, storage=bucket) as (settings, db):
        tmp = settings.data_path.parent
        try:
            yield settings, db, tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def start_daemon(settings: Settings, server: S3Server, home: Path) -> subprocess.Popen[bytes]:
    """`batchops-daemon` configured by environment only, with a data directory of its own."""
    home.mkdir(parents=True)
    bucket, store_prefix = settings.storage.url.removeprefix("s3://").split("/", 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHOPS_")}
    env |= {
        "PYTHONPATH": str(ROOT),
        "XDG_CONFIG_HOME": str(home),
        "BATCHOPS_DATA_DIR": str(home / "data"),
        "BATCHOPS_DATABASE_URL": settings.database.url,
        "BATCHOPS_REDIS_URL": settings.redis.url,
        "BATCHOPS_REDIS_PREFIX": settings.redis.prefix,
        **storage_env(server, bucket, store_prefix),
        "BATCHOPS_SMTP_HOST": "",
        "BATCHOPS_WORKER_METRICS_PORT": "-1",
        "BATCHOPS_WORKER_MAX_JOBS": "10",
        "BATCHOPS_WORKER_POLL_DELAY": "0.05",
    }
    with open(home / "daemon.log", "wb") as log:
        return subprocess.Popen(
            [str(BIN / "batchops-daemon"), "--log-level", "WARNING"],
            cwd=home,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def _intake(db: Database, settings: Settings, folder: Path, tag: str, n: int) -> list[int]:
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for i in range(n):
        path = folder / f"{tag}{i:03d}.csv"
        body = "".join(
            f"{tag}{i:03d}{j:06d},9{'AB'[j % 2]},{40 + j % 60},{30 + j % 70}\n" for j in range(ROWS)
        )
        path.write_text("Student ID,class,maths,english\n" + body)
        ids.append((await intake_file(db, settings, SYSTEM, path, source="Exams")).id)
    return ids


async def _run(db: Database, settings: Settings, ids: list[int], timeout: float = 900) -> float:
    """Enqueue `ids`, return the seconds until all are final."""
    dispatcher = await Dispatcher.connect(db, settings)
    started = time.perf_counter()
    for upload_id in ids:
        await dispatcher.enqueue("process_upload", upload_id)
    await dispatcher.close()
    while time.perf_counter() - started < timeout:
        async with db.unit() as session:
            pending = await session.scalar(
                select(func.count(Upload.id)).where(
                    Upload.id.in_(ids),
                    Upload.status.in_([UploadStatus.QUEUED, UploadStatus.PROCESSING]),
                )
            )
        if not pending:
            return time.perf_counter() - started
        await asyncio.sleep(0.05)
    raise SystemExit(f"{len(ids)} uploads not final after {timeout} s")


async def _workers(db: Database) -> int:
    async with db.unit() as session:
        return (
            await session.scalar(
                select(func.count(func.distinct(JobRun.worker))).where(
                    JobRun.status == RunStatus.SUCCEEDED
                )
            )
            or 0
        )


async def scaling_round(server: S3Server, daemons: int) -> tuple[float, int, int]:
    """(seconds, uploads published, rows read) for the measured batch with `daemons` daemons."""
    async with environment(server) as (settings, db, tmp):
        processes = [start_daemon(settings, server, tmp / f"host{k}") for k in range(daemons)]
        try:
            warm = 0
            while await _workers(db) < daemons:  # until every daemon has run an upload
                warm += 1
                if warm > 10:
                    raise SystemExit(f"only {await _workers(db)} of {daemons} daemons took work")
                await _run(
                    db,
                    settings,
                    await _intake(db, settings, tmp / "warm", f"W{warm}", 10 * daemons),
                )
            ids = await _intake(db, settings, tmp / "in", "S", N)
            elapsed = await _run(db, settings, ids)
            async with db.unit() as session:
                published, rows = (
                    await session.execute(
                        select(
                            func.count(Upload.id), func.coalesce(func.sum(Upload.rows_in), 0)
                        ).where(Upload.id.in_(ids), Upload.status == UploadStatus.PUBLISHED)
                    )
                ).one()
                runs = await session.scalar(
                    select(func.count(JobRun.id)).where(
                        JobRun.upload_id.in_(ids), JobRun.status == RunStatus.SUCCEEDED
                    )
                )
            assert runs == N, f"{runs} succeeded runs for {N} uploads (lost or doubled)"
            return elapsed, int(published), int(rows)
        finally:
            for process in processes:
                stop(process)


def _write_large(path: Path, megabytes: int) -> None:
    line_bytes = len("S0000000,9A,55,66\n")
    rows = megabytes * 1024 * 1024 // line_bytes
    with path.open("w") as out:
        out.write("Student ID,class,maths,english\n")
        chunk = 100_000
        for start in range(0, rows, chunk):
            out.write(
                "".join(
                    f"S{i:07d},9{'AB'[i % 2]},{40 + i % 60},{30 + i % 70}\n"
                    for i in range(start, min(rows, start + chunk))
                )
            )


async def large_upload(
    db: Database, settings: Settings, path: Path, scratch: Path
) -> tuple[float, float]:
    """(intake seconds, read seconds) of one file on `settings`' store."""
    started = time.perf_counter()
    info = await intake_file(db, settings, SYSTEM, path, force=True)
    stored = time.perf_counter()
    async with db.unit() as session:
        key = await session.scalar(select(Upload.stored_path).where(Upload.id == info.id))
    assert key
    local = await open_store(settings).local_copy(key, scratch, sha256=info.sha256)
    read = time.perf_counter()
    assert local.stat().st_size == path.stat().st_size
    return stored - started, read - stored


async def storage_overhead(server: S3Server) -> None:
    async with environment(server) as (s3, db, tmp):
        local = dataclasses.replace(
            s3, storage=dataclasses.replace(s3.storage, url=(tmp / "store").as_uri())
        )
        source = tmp / "large.csv"
        _write_large(source, LARGE_MB)
        size_mb = source.stat().st_size / 1024**2
        best: dict[str, tuple[float, float]] = {}
        for attempt in range(2):
            for name, settings in (("local", local), ("s3", s3)):
                scratch = tmp / f"scratch-{name}-{attempt}"
                figures = await large_upload(db, settings, source, scratch)
                shutil.rmtree(scratch, ignore_errors=True)
                if name not in best or sum(figures) < sum(best[name]):
                    best[name] = figures
        print(f"\n(b) one {size_mb:.0f} MB CSV: intake (stream + sha256 + put + row), then the")
        print("    pipeline's read of its source (local_copy, as materialize does); best of 2")
        print(f"{'store':8} {'intake s':>9} {'read s':>8} {'total s':>8} {'MB/s':>7}")
        for name, (put, read) in best.items():
            total = put + read
            print(f"{name:8} {put:9.2f} {read:8.2f} {total:8.2f} {size_mb / total:7.0f}")
        ratio = sum(best["s3"]) / sum(best["local"])
        print(f"ratio S3 (moto on this machine) / local disk, total: {ratio:.2f}x")


async def main() -> int:
    print(f"(a) {N} uploads of {ROWS} rows, S3 store (moto), PostgreSQL, Redis; max_jobs 10, ")
    print("    stage_processes auto (2 per daemon); " + load_note())
    server = S3Server().start()
    try:
        results: dict[int, tuple[float, float]] = {}
        for daemons in DAEMONS:
            elapsed, published, rows = await scaling_round(server, daemons)
            results[daemons] = (published / elapsed, rows / elapsed)
            up, rw = results[daemons]
            base_up, base_rw = results[DAEMONS[0]]
            print(
                f"{daemons} daemon(s): {published}/{N} published in {elapsed:5.1f} s = "
                f"{up:6.1f} uploads/s ({up / base_up:.2f}x), {rw:9,.0f} rows/s "
                f"({rw / base_rw:.2f}x)",
                flush=True,
            )
        if not os.environ.get("BENCH_SKIP_LARGE"):
            await storage_overhead(server)
        print(load_note())
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
