"""Reading a database and a store back for comparison, and running `batchops restore`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from batchops_core.attendance.models import Holiday, Punch
from batchops_core.backup.rows import backed_up_tables
from batchops_core.infra.config import Settings
from batchops_core.infra.db import open_database
from batchops_core.models import AuditLog, Job, Upload, User
from batchops_tui.cli.main import main

ENV_CLEARED = (
    "BATCHOPS_CONFIG",
    "BATCHOPS_USER",
    "BATCHOPS_PASSWORD",
    "SSH_CONNECTION",
    "BATCHOPS_STORAGE_URL",
    "BATCHOPS_STORAGE_ENDPOINT_URL",
    "BATCHOPS_STORAGE_ACCESS_KEY",
    "BATCHOPS_STORAGE_SECRET_KEY",
    "BATCHOPS_RETENTION_BACKUP_URL",
)


def host_env(
    monkeypatch: pytest.MonkeyPatch,
    data_dir: Path,
    database_url: str,
    **extra: str,
) -> None:
    """The environment of `batchops` on a host with its own data directory (and so its own
    local store), no config file, no Redis, no SMTP; `extra` sets more BATCHOPS_* variables."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(data_dir.parent)
    for name in ENV_CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(data_dir.parent / "xdg"))
    monkeypatch.setenv("BATCHOPS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("BATCHOPS_DATABASE_URL", database_url)
    monkeypatch.setenv("BATCHOPS_REDIS_URL", "")
    monkeypatch.setenv("BATCHOPS_SMTP_HOST", "")
    for name, value in extra.items():
        monkeypatch.setenv(name, value)


async def restore(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`batchops restore …` as a person runs it (in a thread: the CLI runs its own event loop)."""
    code = await asyncio.to_thread(main, ["restore", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


async def restore_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = await restore(capsys, *argv, "--json")
    assert code == 0, err
    return dict(json.loads(out))


def with_database(settings: Settings, url: str) -> Settings:
    return dataclasses.replace(settings, database=dataclasses.replace(settings.database, url=url))


async def counts(settings: Settings, url: str) -> dict[str, int]:
    db = open_database(settings, url)
    try:
        async with db.unit() as session:
            return {
                t.name: int(await session.scalar(select(func.count()).select_from(t)) or 0)
                for t in backed_up_tables()
            }
    finally:
        await db.dispose()


async def facts(settings: Settings, url: str) -> dict[str, Any]:
    """Values of every kind the backup must carry: aware datetimes, JSON (and SQL NULL beside
    it), enums, booleans, dates, naive wall-clock datetimes."""
    db = open_database(settings, url)
    try:
        async with db.unit() as session:
            users = (
                await session.execute(
                    select(User.username, User.created_at, User.active, User.role)
                )
            ).all()
            uploads = (
                await session.execute(
                    select(
                        Upload.id,
                        Upload.status,
                        Upload.stored_path,
                        Upload.report_csv,
                        Upload.report_pdf,
                        Upload.summary,
                        Upload.published_at,
                    ).order_by(Upload.id)
                )
            ).all()
            return {
                "users": sorted(tuple(u) for u in users),
                "uploads": [tuple(u) for u in uploads],
                "uploads without summary": await session.scalar(
                    select(func.count(Upload.id)).where(Upload.summary.is_(None))
                ),
                "jobs": sorted(
                    (await session.execute(select(Job.name, Job.arguments, Job.enabled))).all()
                ),
                "holidays": (await session.scalars(select(Holiday.day))).all(),
                "punches": (await session.scalars(select(Punch.punched_at))).all(),
                "last audit": await session.scalar(
                    select(AuditLog.action).order_by(AuditLog.id.desc()).limit(1)
                ),
            }
    finally:
        await db.dispose()
