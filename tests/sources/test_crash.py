"""Kill a real `batchops source sync` process (SIGKILL) mid-sync: no row is lost or doubled.

Each batch's records and the advance of `last_synced_id` commit together, so at the moment of
the kill the stored records are exactly the external rows up to `last_synced_id`; the next sync
continues from there and ends with every row exactly once.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from batchops_core.accounts import UserInfo
from batchops_core.enums import Role
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.sources.models import Source, SourceRecord
from batchops_core.sources.service import add_source
from batchops_core.sources.sync import sync_source
from tests.sources.conftest import punch_rows, sqlite_config, wait_for

ROWS = 50_000


async def _state(db: Database) -> tuple[int, int, int]:
    async with db.unit() as uow:
        source = await uow.scalar(select(Source).where(Source.name == "Big log"))
        count = await uow.scalar(select(func.count()).where(SourceRecord.source_id == source.id))
        distinct = await uow.scalar(
            select(func.count(func.distinct(SourceRecord.external_id))).where(
                SourceRecord.source_id == source.id
            )
        )
    return int(count or 0), int(distinct or 0), source.last_synced_id


async def test_sigkill_mid_sync_loses_and_doubles_nothing(
    db: Database, db_settings: Settings, users: dict[Role, UserInfo], tmp_path: Path
) -> None:
    external = tmp_path / "big.db"
    with sqlite3.connect(external) as conn:
        conn.execute(
            "CREATE TABLE punch_log (id INTEGER PRIMARY KEY, emp_no TEXT, punched_at TEXT, "
            "device TEXT)"
        )
        conn.executemany("INSERT INTO punch_log VALUES (?, ?, ?, ?)", punch_rows(1, ROWS))
    async with db.unit() as uow:
        await add_source(
            uow,
            actor=users[Role.ADMIN].actor,
            name="Big log",
            kind="database",
            department="Attendance",
            config=sqlite_config(external, batch_size=1000),
        )
    env = {
        **os.environ,
        "BATCHOPS_DATABASE_URL": db_settings.database_url,
        "BATCHOPS_DATA_DIR": db_settings.data_dir,
        "BATCHOPS_REDIS_URL": "",
        "BATCHOPS_SMTP_HOST": "",
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
    }
    for name in ("BATCHOPS_USER", "BATCHOPS_CONFIG"):
        env.pop(name, None)
    code = "import sys; from batchops_tui.cli.main import main; sys.exit(main(sys.argv[1:]))"
    child = subprocess.Popen(
        [sys.executable, "-c", code, "source", "sync", "Big log"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        async def some_batches_committed() -> bool:
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            return (await _state(db))[2] >= 3_000

        await wait_for(some_batches_committed, timeout=60, every=0.01)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    count, distinct, last = await _state(db)
    assert 3_000 <= last < ROWS, "the kill must land mid-sync"
    assert count == distinct == last  # exactly the rows up to the high-water mark

    report = await sync_source(db, db_settings, actor=users[Role.ADMIN].actor, name="Big log")
    assert report.ok and report.rows == ROWS - last
    assert await _state(db) == (ROWS, ROWS, ROWS)
