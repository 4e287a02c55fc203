"""Retention keeps the newest complete backups, in a folder or an object store; a backup without
its manifest is never restored, and removed only once no run can still be writing it."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from batchops_core.backup import write_backup
from batchops_core.backup.location import backup_name, list_backups, open_location
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import RetentionSettings, Settings
from batchops_core.infra.db import Database
from tests.backup.helpers import host_env, restore, restore_json


@pytest.fixture(params=["folder", "s3"])
def location_settings(request: pytest.FixtureRequest, db_settings: Settings) -> Settings:
    if request.param == "folder":
        return db_settings
    s3: Settings = request.getfixturevalue("s3_settings")
    bucket = s3.storage.url.removeprefix("s3://").split("/")[0]
    return dataclasses.replace(
        db_settings,
        storage=dataclasses.replace(s3.storage, url=""),  # files local, backups on S3
        retention=RetentionSettings(backup_url=f"s3://{bucket}/nightly"),
    )


async def test_retention_keeps_the_newest_complete_backups(
    db: Database,
    location_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = location_settings
    store = open_location(settings)
    crashed = backup_name(utcnow() - timedelta(days=2))  # a run killed two days ago
    running = backup_name(utcnow() + timedelta(minutes=5))  # a run writing right now
    for name in (crashed, running):
        await store.put_bytes(f"{name}/tables/users.jsonl.gz", b"half")

    written = [(await write_backup(db, settings, keep=2)).name for _ in range(3)]

    listing = await list_backups(store)
    assert listing.complete == written[1:]
    assert listing.incomplete == [running], "the crashed run's folder went, the live one stays"
    assert [o.key async for o in store.list(f"{written[0]}/")] == []
    assert [o.key async for o in store.list(f"{written[1]}/")] != []

    env = {"BATCHOPS_RETENTION_BACKUP_URL": settings.retention.backup_url}
    if settings.retention.backup_url:
        env |= {
            "BATCHOPS_STORAGE_ENDPOINT_URL": settings.storage.endpoint_url,
            "BATCHOPS_STORAGE_ACCESS_KEY": settings.storage.access_key.get(),
            "BATCHOPS_STORAGE_SECRET_KEY": settings.storage.secret_key.get(),
        }
    host_env(monkeypatch, settings.data_path, settings.database_url, **env)
    listed = await restore_json(capsys, "--list")
    assert [(b["name"], b["complete"]) for b in listed["backups"]] == [
        (written[1], True),
        (written[2], True),
        (running, False),
    ]
    code, _, err = await restore(capsys, running, "--into", "sqlite+aiosqlite:///unused.db")
    assert code == 1 and "incomplete" in err
