"""Backup fixtures: a database populated through the real intake and pipeline, empty databases
to restore into (SQLite or PostgreSQL), and the S3 server of tests/s3server.py."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from batchops_core.accounts import UserInfo
from batchops_core.attendance.models import Employee, Holiday, Punch, Shift
from batchops_core.enums import Role, UploadStatus
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Upload, User
from batchops_core.pipeline.runner import run_upload
from batchops_core.services.uploads import intake_file
from tests.conftest import _RUN_ID, _admin_exec, _pg_url, _unavailable
from tests.s3server import s3_server, s3_settings

__all__ = ["s3_server", "s3_settings"]

GRADEBOOK = "Student ID,class,maths,english\n" + "".join(
    f"S{i:03d},9{'AB'[i % 2]},{40 + i},{60 + i % 30}\n" for i in range(1, 21)
)
PUNCHED_AT = datetime(2026, 11, 20, 9, 4, 30)
"""A wall-clock punch: naive on purpose, it must come back naive."""
HOLIDAY = date(2026, 12, 25)


@dataclass(frozen=True)
class Populated:
    published_id: int
    queued_id: int
    keys: dict[str, bytes]
    """Every storage key the database names, with the object's bytes."""


@pytest.fixture(scope="session", autouse=True)
def _stop_pipeline_pool() -> Any:
    yield
    from batchops_core.pipeline.pool import shutdown_pool

    shutdown_pool()


EmptyDatabase = Callable[[str], Awaitable[str]]


@pytest.fixture
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmptyDatabase]:
    """`await make("sqlite" | "postgresql")`: the URL of a database with nothing in it, not
    even a schema (the restore migrates it)."""
    template = request.getfixturevalue("pg_template")  # PostgreSQL reachable, or None
    made: list[str] = []

    async def make(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite+aiosqlite:///{tmp_path / f'restored-{uuid.uuid4().hex[:6]}.db'}"
        if template is None:
            _unavailable("PostgreSQL", "connection failed")
        name = f"bo_r_{_RUN_ID}_{uuid.uuid4().hex[:10]}"
        await _admin_exec([f'CREATE DATABASE "{name}"'])
        made.append(name)
        return _pg_url(name)

    yield make
    if made:
        asyncio.run(_admin_exec([f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in made]))


async def populate(
    db: Database, settings: Settings, users: dict[Role, UserInfo], tmp_path: Path
) -> Populated:
    """Two uploads through the real intake (one run through the pipeline to its reports), a
    disabled account, a holiday (a date) and a punch (a naive wall-clock time)."""
    source = tmp_path / "outside" / "grades 9.csv"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(GRADEBOOK)
    published = await intake_file(db, settings, users[Role.USER].actor, source, source="exams")
    outcome = await run_upload(db, settings, published.id, worker="w1")
    assert outcome.succeeded, outcome
    (tmp_path / "outside" / "notes.csv").write_text("a,b\n1,2\n")
    queued = await intake_file(
        db, settings, users[Role.ADMIN].actor, tmp_path / "outside" / "notes.csv"
    )
    async with db.unit() as session:
        moderator = await session.get(User, users[Role.MODERATOR].id)
        assert moderator is not None
        moderator.active = False
        shift = Shift(name="Day", start_minute=540, end_minute=1020)
        session.add_all([shift, Holiday(day=HOLIDAY, name="Christmas")])
        await session.flush()
        employee = Employee(code="E1", name="Asha", shift_id=shift.id)
        session.add(employee)
        await session.flush()
        session.add(Punch(employee_id=employee.id, punched_at=PUNCHED_AT, device="gate"))
    from batchops_core.storage import open_store

    store = open_store(settings)
    keys: dict[str, bytes] = {}
    async with db.unit() as session:
        for upload in (await session.scalars(select(Upload))).all():
            for key in (
                upload.stored_path,
                upload.report_csv,
                upload.report_pdf,
                upload.fixlist_csv,
                upload.fixlist_xlsx,
            ):
                if key:
                    keys[key] = await store.read_bytes(key)
        statuses = dict((await session.execute(select(Upload.id, Upload.status))).all())
        assert await session.scalar(select(func.count(Upload.id))) == 2
    assert statuses == {published.id: UploadStatus.PUBLISHED, queued.id: UploadStatus.QUEUED}
    assert len(keys) >= 4, keys  # two uploads, the published one's CSV and PDF reports
    return Populated(published.id, queued.id, keys)


@pytest_asyncio.fixture
async def populated(
    db: Database, db_settings: Settings, users: dict[Role, UserInfo], tmp_path: Path
) -> Populated:
    return await populate(db, db_settings, users, tmp_path)
