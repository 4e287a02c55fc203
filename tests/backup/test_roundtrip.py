"""A populated database backed up by the nightly task and restored with `batchops restore` into
a fresh database on another host (its own data directory and store), on both backends."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

import pytest

from batchops_core.accounts import create_user
from batchops_core.enums import Role
from batchops_core.infra.config import RetentionSettings, Settings
from batchops_core.infra.db import Database, open_database
from batchops_core.infra.migrate import ensure_current
from batchops_core.permissions import SYSTEM
from batchops_core.storage import store_for
from batchops_core.worker.automation.frame import run_automation
from batchops_core.worker.context import TaskContext
from tests.backup.conftest import HOLIDAY, PUNCHED_AT, EmptyDatabase, Populated, populate
from tests.backup.helpers import counts, facts, host_env, restore_json
from tests.s3server import ACCESS_KEY, SECRET_KEY, S3Server


async def backup(db: Database, settings: Settings, **args: object) -> dict[str, object]:
    ctx = TaskContext(db=db, settings=settings, worker="test@host:1")
    result = await run_automation(ctx, "run_daily_backup", (), dict(args))
    assert result["status"] == "succeeded", result
    return result


async def check_restored(
    settings: Settings, source_url: str, target_url: str, before: dict[str, object]
) -> None:
    source, target = await counts(settings, source_url), await counts(settings, target_url)
    assert target.pop("audit_logs") == source.pop("audit_logs") + 1, "the restore is audited"
    assert target == source and source["uploads"] == 2 and source["users"] == 3
    restored = await facts(settings, target_url)
    assert restored.pop("last audit") == "backup.restore"
    before = dict(before)
    before.pop("last audit")
    assert restored == before
    assert restored["holidays"] == [HOLIDAY] and restored["punches"] == [PUNCHED_AT]
    assert all(isinstance(u[1], datetime) and u[1].tzinfo for u in restored["users"])
    db = open_database(settings, target_url)
    try:
        await ensure_current(db)  # at this code's head: usable as is
        async with db.unit() as session:
            newcomer = await create_user(
                session,
                actor=SYSTEM,
                username="after-restore",
                email="after@school.example",
                role=Role.USER,
                password="correct-horse-battery",
                policy=settings.security,
            )
        assert newcomer.id > max(3, source["users"]), "ids continue after the restored ones"
    finally:
        await db.dispose()


def stored_bytes(store_root: Path, keys: dict[str, bytes]) -> dict[str, bytes]:
    return {key: (store_root / key).read_bytes() for key in keys if (store_root / key).is_file()}


@pytest.mark.parametrize("into", ["sqlite", "postgresql"])
async def test_round_trip_into_a_fresh_database_and_store(
    db: Database,
    db_settings: Settings,
    db_url: str,
    populated: Populated,
    empty_database: EmptyDatabase,
    into: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SQLite → SQLite / PostgreSQL and PostgreSQL → both: one portable format."""
    before = await facts(db_settings, db_url)
    done = await backup(db, db_settings)
    target_url = await empty_database(into)
    new_host = tmp_path / "new-host" / "data"
    host_env(
        monkeypatch,
        new_host,
        target_url,
        BATCHOPS_RETENTION_BACKUP_URL=str(db_settings.data_path / "backups"),
    )

    report = await restore_json(capsys, str(done["name"]), "--into", target_url)

    assert report["backup"] == done["name"] and report["replaced"] == {}
    assert report["objects"] == len(populated.keys) and report["missing"] == []
    assert report["tables"]["uploads"] == 2 and report["rows"] == sum(report["tables"].values())
    await check_restored(db_settings, db_url, target_url, before)
    assert stored_bytes(new_host / "storage", populated.keys) == populated.keys


async def test_restore_from_an_s3_backup_into_a_local_store(
    db: Database,
    db_settings: Settings,
    db_url: str,
    users: dict[Role, object],
    s3_settings: Settings,
    s3_server: S3Server,
    empty_database: EmptyDatabase,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Files in an object store, backups in another prefix of it; the restoring host keeps its
    files in a local folder and reaches the backup with [storage]'s credentials."""
    bucket = s3_settings.storage.url.removeprefix("s3://").split("/")[0]
    campus = dataclasses.replace(
        db_settings,
        storage=s3_settings.storage,
        retention=RetentionSettings(backup_url=f"s3://{bucket}/backups"),
    )
    populated = await populate(db, campus, users, tmp_path)  # type: ignore[arg-type]
    before = await facts(campus, db_url)
    done = await backup(db, campus)
    assert str(done["where"]).startswith(f"s3://{bucket}/backups/backup-")
    copies = store_for(f"s3://{bucket}/backups", campus)
    keys = [o.key async for o in copies.list(f"{done['name']}/objects/")]
    assert len(keys) == len(populated.keys), "the objects are in the S3 backup"

    target_url = await empty_database("sqlite" if "sqlite" in db_url else "postgresql")
    new_host = tmp_path / "laptop" / "data"
    host_env(
        monkeypatch,
        new_host,
        target_url,
        BATCHOPS_STORAGE_ENDPOINT_URL=s3_server.endpoint,
        BATCHOPS_STORAGE_ACCESS_KEY=ACCESS_KEY,
        BATCHOPS_STORAGE_SECRET_KEY=SECRET_KEY,
    )
    report = await restore_json(
        capsys, f"s3://{bucket}/backups/{done['name']}", "--into", target_url
    )

    assert report["source"].startswith(f"s3://{bucket}/backups/{done['name']}")
    assert report["objects"] == len(populated.keys)
    await check_restored(db_settings, db_url, target_url, before)
    assert stored_bytes(new_host / "storage", populated.keys) == populated.keys
