"""Exports that cannot destroy, and searches taken literally (issue #10, items 7 and 9)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select

from batchops_core.enums import Role
from batchops_core.errors import ValidationFailed
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database, open_database
from batchops_core.models import AuditLog
from batchops_core.services import reports
from batchops_core.services.pagination import MAX_SEARCH
from batchops_core.services.runs import list_runs
from tests.tui.seed import seed_activity


@pytest_asyncio.fixture
async def export_db(db_settings: Settings, tmp_path: Path) -> AsyncIterator[Database]:
    settings = dataclasses.replace(db_settings, export_dir=str(tmp_path / "exports"))
    database = open_database(settings)
    yield database
    await database.dispose()


async def _export(db: Database, actor, destination, *, fmt="pdf", force=False):  # type: ignore[no-untyped-def]
    async with db.unit() as uow:
        return await reports.export_report(
            uow, actor=actor, upload_id=4, fmt=fmt, destination=destination, force=force
        )


async def test_export_only_into_the_export_folder(
    db: Database, db_settings: Settings, export_db: Database, users, tmp_path: Path
) -> None:
    await seed_activity(db, db_settings, users)
    moderator = users[Role.MODERATOR].actor
    root = tmp_path / "exports"

    done = await _export(export_db, moderator, None)
    assert done.path == root / "upload-4.pdf" and done.size > 0 and not done.replaced

    database_file = Path(db_settings.data_path) / "batchops.db"
    database_file.parent.mkdir(parents=True, exist_ok=True)
    database_file.write_bytes(b"precious")
    outside = tmp_path / "elsewhere.csv"
    (root / "sub").mkdir()
    (root / "link").symlink_to(tmp_path)
    (root / "file-link.csv").symlink_to(outside)
    refusals = {
        str(database_file): "export folder",
        str(outside): "export folder",
        "../escape.csv": "'..'",
        "link/x.csv": "symbolic link",
        "file-link.csv": "symbolic link",
        "missing/x.csv": "does not exist",
        "upload-4.pdf": "--force",
    }
    for destination, sentence in refusals.items():
        with pytest.raises(ValidationFailed, match=sentence):
            await _export(export_db, moderator, destination)
    assert database_file.read_bytes() == b"precious"
    assert not outside.exists()

    again = await _export(export_db, moderator, "upload-4.pdf", force=True)
    assert again.replaced and again.path == root / "upload-4.pdf"
    csv_copy = await _export(export_db, users[Role.USER].actor, "sub", fmt="csv")
    assert csv_copy.path == root / "sub" / "upload-4.csv"
    assert not [p for p in root.rglob(".*.part")], "no temporary file is left behind"
    async with db.unit() as session:
        rows = list(
            await session.scalars(
                select(AuditLog).where(AuditLog.action == "report.export").order_by(AuditLog.id)
            )
        )
    assert [(r.actor_name, r.target_id) for r in rows] == [
        ("moderator1", 4),
        ("moderator1", 4),
        ("user1", 4),
    ], rows
    assert "(replaced)" in rows[1].detail and str(root / "sub" / "upload-4.csv") in rows[2].detail


async def test_export_folder_inside_the_data_directory_is_refused(
    db: Database, db_settings: Settings, users, tmp_path: Path
) -> None:
    await seed_activity(db, db_settings, users)
    inside = dataclasses.replace(db_settings, export_dir=str(db_settings.data_path / "out"))
    database = open_database(inside)
    try:
        with pytest.raises(ValidationFailed, match="overlaps the data directory"):
            await _export(database, users[Role.ADMIN].actor, None)
    finally:
        await database.dispose()
    assert not (db_settings.data_path / "out").exists()


async def test_search_is_literal_and_bounded(db: Database, db_settings: Settings, users) -> None:
    await seed_activity(db, db_settings, users)
    actor = users[Role.ADMIN].actor
    async with db.unit() as session:
        everything = await reports.list_reports(session, actor=actor)
        assert everything.total > 0
        for wildcard in ("%", "_", "\\", "%_%"):  # no report name holds these characters
            assert (await reports.list_reports(session, actor=actor, search=wildcard)).total == 0
        for wildcard in ("%", "\\", "e%s"):  # `process_upload` holds `_`, literally
            page = await list_runs(session, actor=actor, search=wildcard)
            assert page.total == 0, wildcard
        assert (await list_runs(session, actor=actor, search="s_u")).total > 0
        with pytest.raises(ValidationFailed, match=f"at most {MAX_SEARCH} characters"):
            await reports.list_reports(session, actor=actor, search="x" * 60_000)
        with pytest.raises(ValidationFailed, match="60,000"):
            await list_runs(session, actor=actor, search="x" * 60_000)


def test_umask_of_the_cli_and_daemon_entry(tmp_path: Path) -> None:
    """The daemon's entry sets umask 027 before anything is written."""
    import subprocess
    import sys

    probe = (
        "import os; from batchops_daemon import main as m; "
        "m.build_parser(); os.umask(0o022); "
        "import contextlib\n"
        "with contextlib.suppress(SystemExit): m.main(['--version'])\n"
        "print(oct(os.umask(0)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=os.environ
    )
    assert out.stdout.strip().endswith("0o27"), out.stdout + out.stderr
