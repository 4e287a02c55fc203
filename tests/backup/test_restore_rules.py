"""What a restore refuses and what it tolerates: a live database without --force, a damaged
backup, a backup missing an object, a target at another schema; and the snapshot's consistency."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, inspect, select

from batchops_core.accounts import UserInfo, create_user
from batchops_core.backup import write_backup
from batchops_core.backup.snapshot import consistent_read
from batchops_core.enums import Role
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database, open_database
from batchops_core.infra.migrate import current_revision, head_revision, upgrade
from batchops_core.models import Upload, User
from batchops_core.permissions import SYSTEM
from batchops_core.storage import open_store
from tests.backup.conftest import EmptyDatabase, Populated
from tests.backup.helpers import counts, host_env, restore, restore_json
from tests.conftest import TEST_PASSWORD


async def add_user(db: Database, settings: Settings, name: str) -> UserInfo:
    async with db.unit() as session:
        return await create_user(
            session,
            actor=SYSTEM,
            username=name,
            email=f"{name}@school.example",
            role=Role.USER,
            password=TEST_PASSWORD,
            policy=settings.security,
        )


async def usernames(db: Database) -> set[str]:
    async with db.unit() as session:
        return set((await session.scalars(select(User.username))).all())


async def test_a_live_database_is_replaced_only_with_force(
    db: Database,
    db_settings: Settings,
    db_url: str,
    populated: Populated,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    done = await write_backup(db, db_settings)
    at_backup = await counts(db_settings, db_url)
    await add_user(db, db_settings, "late")  # after the backup: a restore loses it
    host_env(monkeypatch, db_settings.data_path, db_url)

    code, out, err = await restore(capsys, done.name)

    assert code == 1 and out == ""
    assert "already holds data (4 users and 2 uploads)" in err and "--force" in err
    assert "late" in await usernames(db), "refused: nothing changed"

    report = await restore_json(capsys, done.name, "--force")

    assert report["replaced"] == {"users": 4, "uploads": 2}
    assert await usernames(db) == {"admin1", "moderator1", "user1"}
    after = await counts(db_settings, db_url)
    assert after.pop("audit_logs") == at_backup.pop("audit_logs") + 1
    assert after == at_backup


async def test_a_damaged_backup_is_refused_before_the_database_is_touched(
    db: Database,
    db_settings: Settings,
    populated: Populated,
    empty_database: EmptyDatabase,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    done = await write_backup(db, db_settings)
    folder = db_settings.data_path / "backups" / done.name
    table = folder / "tables" / "users.jsonl.gz"
    table.write_bytes(table.read_bytes()[:-8] + b"garbage!")
    target_url = await empty_database("sqlite")
    host_env(monkeypatch, db_settings.data_path, target_url)

    code, _, err = await restore(capsys, str(folder), "--into", target_url)

    assert code == 1 and "does not match its recorded sha256" in err
    target = open_database(db_settings, target_url)
    try:
        assert await current_revision(target) is None, "the target was not touched"
    finally:
        await target.dispose()


async def test_a_missing_object_is_named_and_the_backup_still_restores(
    db: Database,
    db_settings: Settings,
    populated: Populated,
    empty_database: EmptyDatabase,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with db.unit() as session:
        pdf = await session.scalar(
            select(Upload.report_pdf).where(Upload.id == populated.published_id)
        )
    assert pdf
    assert await open_store(db_settings).delete(pdf)

    done = await write_backup(db, db_settings)

    assert [(m.key, m.table, m.column, m.row_id) for m in done.manifest.missing] == [
        (pdf, "uploads", "report_pdf", populated.published_id)
    ]
    assert len(done.manifest.objects) == len(populated.keys) - 1
    manifest = json.loads(
        (db_settings.data_path / "backups" / done.name / "manifest.json").read_text()
    )
    assert [m["key"] for m in manifest["missing"]] == [pdf]

    target_url = await empty_database("sqlite")
    new_host = db_settings.data_path.parent / "other-host" / "data"
    host_env(
        monkeypatch,
        new_host,
        target_url,
        BATCHOPS_RETENTION_BACKUP_URL=str(db_settings.data_path / "backups"),
    )
    code, out, err = await restore(capsys, "latest", "--into", target_url)

    assert code == 0, err
    assert "missing  1 stored files" in out and pdf in out
    restored = {k: (new_host / "storage" / k).is_file() for k in populated.keys}
    assert restored == {k: k != pdf for k in populated.keys}


async def test_a_target_at_another_schema_is_rebuilt_at_the_backups(
    db: Database,
    db_settings: Settings,
    db_url: str,
    users: dict[Role, UserInfo],
    empty_database: EmptyDatabase,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An empty database left at an older revision: BatchOps' tables are dropped and migrated
    again (a table of someone else's stays)."""
    done = await write_backup(db, db_settings)
    target_url = await empty_database("postgresql" if "postgresql" in db_url else "sqlite")
    target = open_database(db_settings, target_url)
    try:
        await upgrade(target, "0006")
        async with target.engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        host_env(monkeypatch, db_settings.data_path, target_url)

        report = await restore_json(capsys, done.name, "--into", target_url)

        assert report["schema"] == head_revision() == await current_revision(target)
        assert await usernames(target) == {u.username for u in users.values()}
        async with target.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert "notes" in tables
    finally:
        await target.dispose()


async def test_the_snapshot_does_not_see_writes_committed_while_it_reads(
    db: Database, db_settings: Settings, users: dict[Role, UserInfo]
) -> None:
    async with consistent_read(db) as conn:
        first = (await conn.execute(select(func.count(User.id)))).scalar()
        await add_user(db, db_settings, "meanwhile")
        again = (await conn.execute(select(func.count(User.id)))).scalar()
    assert first == again == 3
    assert "meanwhile" in await usernames(db)
