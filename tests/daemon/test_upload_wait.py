"""`batchops upload --wait` waits for the final state whoever processes the upload.

Here the command queues on a Redis that no worker reads, and a daemon without Redis, polling the
same SQLite file, processes every upload: the command must still wait for the published states
(it used to return at once with exit 1 when someone else claimed the upload first)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import select

from batchops_core.infra.config import Settings
from batchops_core.infra.db import open_database
from batchops_core.models import JobRun
from batchops_core.services.status import worker_health
from tests.daemon.conftest import ROOT, fast_worker, wait_for, write_config

GRADEBOOK = "student_id,class,maths\n" + "".join(f"S{i:03d},9A,{40 + i}\n" for i in range(30))


async def test_upload_wait_returns_final_states_when_a_daemon_claims_first(
    settings: Settings, sqlite_url: str, redis_url: str, tmp_path: Path, daemons
) -> None:
    shared = fast_worker(
        dataclasses.replace(
            settings, database=dataclasses.replace(settings.database, url=sqlite_url)
        )
    )
    daemons(write_config(tmp_path / "daemon.toml", shared))
    queue_only = dataclasses.replace(
        shared,
        redis=dataclasses.replace(shared.redis, url=redis_url, prefix=f"bo-wait-{os.getpid()}"),
    )
    config = write_config(tmp_path / "cli.toml", queue_only)
    db = open_database(shared)
    try:
        await wait_for(lambda: _healthy(db, shared), timeout=60)
        files = []
        for i in range(6):
            path = tmp_path / f"marks-{i}.csv"
            path.write_text(GRADEBOOK + f"S9{i:02d},9B,{i}\n", encoding="utf-8")
            files.append(str(path))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        result = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "batchops_tui.cli.main",
                "--config",
                str(config),
                "upload",
                *files,
                "--wait",
                "--json",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        rows = json.loads(result.stdout)
        assert [r["status"] for r in rows] == ["published"] * 6, rows
        async with db.unit() as uow:
            workers = set(await uow.scalars(select(JobRun.worker)))
        assert workers and all(w.startswith("daemon") for w in workers), workers
    finally:
        await db.dispose()
        client = Redis.from_url(redis_url)
        keys = [k async for k in client.scan_iter(f"*{queue_only.redis.prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def _healthy(db, settings: Settings) -> bool:
    return (await worker_health(db, settings)).healthy
