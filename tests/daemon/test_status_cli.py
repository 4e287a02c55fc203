"""`batchops status`: queued and recent work, worker health and next firings, text and JSON."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from batchops_core.enums import RunKind, RunStatus, UploadStatus
from batchops_core.infra.config import Settings
from batchops_core.infra.db import open_database
from batchops_core.models import JobRun, Upload
from batchops_core.worker.heartbeat import Heartbeat
from batchops_tui.cli.main import main
from tests.daemon.conftest import fast_worker, write_config


async def _seed(settings: Settings, *, beat: bool) -> None:
    db = open_database(settings)
    try:
        async with db.unit() as session:
            session.add(Upload(filename="waiting.csv", sha256="a" * 64))
            session.add(Upload(filename="done.csv", sha256="b" * 64, status=UploadStatus.PUBLISHED))
            session.add(
                JobRun(
                    kind=RunKind.AUTOMATION,
                    task="run_daily_backup",
                    status=RunStatus.FAILED,
                    error_code="TASK_FAILED",
                )
            )
        if beat:
            await Heartbeat(db, settings, "daemon@box:42").beat()
    finally:
        await db.dispose()


def test_status_json_and_exit_code(
    db_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = fast_worker(db_settings)
    config = write_config(tmp_path / "config.toml", settings)
    asyncio.run(_seed(settings, beat=False))

    assert main(["--config", str(config), "status", "--json"]) == 1, "work waits, no worker"
    data = json.loads(capsys.readouterr().out)
    assert data["uploads_by_status"]["queued"] == 1
    assert [u["filename"] for u in data["queued"]] == ["waiting.csv"]
    assert data["recent_uploads"][0]["filename"] == "done.csv"
    assert data["recent_runs"][0]["error_code"] == "TASK_FAILED"
    assert len(data["next_firings"]) == 5, "the seeded schedules"
    assert data["workers_alive"] == 0

    asyncio.run(_seed(settings, beat=True))
    assert main(["--config", str(config), "status"]) == 0
    out = capsys.readouterr().out
    assert "daemon@box:42" in out and "alive" in out
    assert "waiting.csv" in out and "Next schedule firings" in out
