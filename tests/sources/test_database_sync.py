"""Database sources on both BatchOps databases: incremental by last_synced_id, per-day jobs,
bad input in one sentence with nothing half-written, one incident per failing source."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import func, select

from batchops_core.accounts import UserInfo
from batchops_core.enums import IncidentStatus, Role
from batchops_core.errors import PermissionDenied, ValidationFailed
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import AuditLog, Incident
from batchops_core.sources.models import JobStatus, Source, SourceJob, SourceRecord
from batchops_core.sources.service import add_source, edit_source, get_source, list_jobs
from batchops_core.sources.sync import sync_source
from tests.sources.conftest import add_sqlite_rows, sqlite_config

Users = dict[Role, UserInfo]


async def _add(db: Database, users: Users, name: str, config: dict) -> None:
    async with db.unit() as uow:
        await add_source(
            uow,
            actor=users[Role.ADMIN].actor,
            name=name,
            kind="database",
            department="Attendance",
            config=config,
        )


async def _counts(db: Database, name: str) -> tuple[int, int, int]:
    async with db.unit() as uow:
        source = await uow.scalar(select(Source).where(Source.name == name))
        total = await uow.scalar(select(func.count()).where(SourceRecord.source_id == source.id))
        distinct = await uow.scalar(
            select(func.count(func.distinct(SourceRecord.external_id))).where(
                SourceRecord.source_id == source.id
            )
        )
        return int(total or 0), int(distinct or 0), source.last_synced_id


async def test_incremental_sync_from_a_sqlite_log(
    db: Database, db_settings: Settings, users: Users, external_sqlite: Path
) -> None:
    await _add(db, users, "Gate punches", sqlite_config(external_sqlite))
    admin = users[Role.ADMIN].actor
    report = await sync_source(db, db_settings, actor=admin, name="Gate punches")
    assert report.ok and report.rows == 250 and report.detail["batches"] == 3
    assert await _counts(db, "Gate punches") == (250, 250, 250)
    days = {j.day.isoformat(): j.rows for j in report.jobs}
    assert days == {"2026-11-30": 100, "2026-12-01": 100, "2026-12-02": 50}
    assert all(j.status is JobStatus.SUCCEEDED for j in report.jobs)

    again = await sync_source(db, db_settings, actor=admin, name="Gate punches")
    assert again.ok and again.rows == 0
    add_sqlite_rows(external_sqlite, 251, 30)
    more = await sync_source(db, db_settings, actor=admin, name="Gate punches")
    assert more.rows == 30 and await _counts(db, "Gate punches") == (280, 280, 280)
    async with db.unit() as uow:
        jobs = await list_jobs(uow, actor=admin, name="Gate punches")
        source = await get_source(uow, actor=admin, name="gate PUNCHES")
    assert {j.day.isoformat(): j.rows for j in jobs}["2026-12-02"] == 80
    assert source.health == "ok" and source.last_error is None
    record = None
    async with db.unit() as uow:
        record = await uow.scalar(select(SourceRecord).where(SourceRecord.external_id == 7))
    assert record.key == "7" and record.data == {
        "employee": "E007",
        "at": "2026-11-30 07:00:07",
        "device": "gate-1",
    }


async def test_sync_from_an_external_postgres_table(
    db: Database, db_settings: Settings, users: Users, external_pg: str
) -> None:
    config = sqlite_config(Path("unused")) | {"url": external_pg, "batch_size": 64}
    await _add(db, users, "PG punches", config)
    report = await sync_source(db, db_settings, actor=users[Role.ADMIN].actor, name="PG punches")
    assert report.ok and report.rows == 250 and report.detail["batches"] == 4
    assert await _counts(db, "PG punches") == (250, 250, 250)
    async with db.unit() as uow:
        record = await uow.scalar(select(SourceRecord).where(SourceRecord.external_id == 101))
    assert record.data["at"] == "2026-12-01T07:01:41" and record.data["employee"] == "E027"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"url": "postgresql://nobody@127.0.0.1:1/none"}, "cannot read punch_log from"),
        ({"columns": {"employee": "emp_number"}}, "config.columns.employee names emp_number"),
        ({"id_column": "row_id"}, "has no column row_id (config.id_column)"),
        ({"password_env": "BO_TEST_UNSET_PASSWORD"}, "BO_TEST_UNSET_PASSWORD"),
    ],
)
async def test_bad_sources_fail_in_one_sentence_and_write_nothing(
    db: Database,
    db_settings: Settings,
    users: Users,
    external_sqlite: Path,
    change: dict,
    expected: str,
) -> None:
    await _add(db, users, "Broken", sqlite_config(external_sqlite) | change)
    report = await sync_source(db, db_settings, actor=users[Role.ADMIN].actor, name="Broken")
    assert not report.ok and expected in report.error
    assert "\n" not in report.error and report.error.endswith(".")
    assert await _counts(db, "Broken") == (0, 0, 0)
    async with db.unit() as uow:
        source = await uow.scalar(select(Source).where(Source.name == "Broken"))
        job = await uow.scalar(select(SourceJob).where(SourceJob.source_id == source.id))
    assert source.last_error == report.error and source.consecutive_failures == 1
    assert job.status is JobStatus.FAILED and job.error == report.error


async def test_a_moved_id_column_then_a_fix_resumes_where_the_last_good_sync_ended(
    db: Database, db_settings: Settings, users: Users, external_sqlite: Path
) -> None:
    admin = users[Role.ADMIN].actor
    await _add(db, users, "Moves", sqlite_config(external_sqlite))
    assert (await sync_source(db, db_settings, actor=admin, name="Moves")).rows == 250
    with sqlite3.connect(external_sqlite) as conn:
        conn.execute("ALTER TABLE punch_log RENAME COLUMN id TO log_id")
    add_sqlite_rows_renamed = [(i, "E1", "2026-12-03 08:00:00", "gate-0") for i in range(251, 261)]
    with sqlite3.connect(external_sqlite) as conn:
        conn.executemany("INSERT INTO punch_log VALUES (?, ?, ?, ?)", add_sqlite_rows_renamed)
    failed = await sync_source(db, db_settings, actor=admin, name="Moves")
    assert failed.error and "has no column id" in failed.error
    async with db.unit() as uow:
        await edit_source(
            uow,
            actor=admin,
            name="Moves",
            config=sqlite_config(external_sqlite, id_column="log_id"),
        )
    fixed = await sync_source(db, db_settings, actor=admin, name="Moves")
    assert fixed.rows == 10 and await _counts(db, "Moves") == (260, 260, 260)


async def test_repeated_failures_open_one_incident_that_resolves_when_data_arrives(
    db: Database, db_settings: Settings, users: Users, external_sqlite: Path
) -> None:
    admin = users[Role.ADMIN].actor
    broken = sqlite_config(external_sqlite, alert_after_failures=2) | {"table": "missing_table"}
    await _add(db, users, "Flaky", broken)
    for _ in range(4):
        report = await sync_source(db, db_settings, actor=admin, name="Flaky")
        assert not report.ok and "missing_table" in report.error
    async with db.unit() as uow:
        incidents = list(await uow.scalars(select(Incident)))
        source = await uow.scalar(select(Source).where(Source.name == "Flaky"))
    assert len(incidents) == 1 and incidents[0].occurrences == 3
    assert incidents[0].source == "source:Flaky" and source.incident_id == incidents[0].id
    assert source.consecutive_failures == 4
    async with db.unit() as uow:
        await edit_source(
            uow,
            actor=admin,
            name="Flaky",
            config=sqlite_config(external_sqlite, alert_after_failures=2),
        )
    assert (await sync_source(db, db_settings, actor=admin, name="Flaky")).rows == 250
    async with db.unit() as uow:
        incident = await uow.get(Incident, incidents[0].id)
        source = await uow.scalar(select(Source).where(Source.name == "Flaky"))
    assert (
        incident.status is IncidentStatus.RESOLVED and "data arrived" in incident.corrective_action
    )
    assert source.incident_id is None and source.consecutive_failures == 0


async def test_config_contract_and_permissions(
    db: Database, users: Users, external_sqlite: Path
) -> None:
    bad = [
        ({"url": "postgresql://u:secret@h/db"}, "contains a password"),
        ({"table": "a; drop table x"}, "plain table name"),
        ({"query": "DELETE FROM punch_log"}, "read-only SELECT"),
        ({"cadence": "every day"}, "5-field cron line"),
        ({"target": "ledger"}, "'records' or 'punches'"),
        ({"bogus": 1}, "config.bogus is not a database setting"),
    ]
    for change, expected in bad:
        config = sqlite_config(external_sqlite) | change
        if "query" in change:
            config.pop("table")
        with pytest.raises(ValidationFailed, match=expected):
            await _add(db, users, "Bad", config)
    with pytest.raises(PermissionDenied):
        async with db.unit() as uow:
            await add_source(
                uow,
                actor=users[Role.MODERATOR].actor,
                name="Nope",
                kind="database",
                department="Attendance",
                config=sqlite_config(external_sqlite),
            )
    with pytest.raises(ValidationFailed, match="unknown department 'Nowhere'"):
        async with db.unit() as uow:
            await add_source(
                uow,
                actor=users[Role.ADMIN].actor,
                name="Nope",
                kind="database",
                department="Nowhere",
                config=sqlite_config(external_sqlite),
            )


async def test_a_punches_target_hands_rows_to_attendance_not_records(
    db: Database, db_settings: Settings, users: Users, external_sqlite: Path
) -> None:
    await _add(db, users, "Gate to punches", sqlite_config(external_sqlite, target="punches"))
    report = await sync_source(
        db, db_settings, actor=users[Role.ADMIN].actor, name="Gate to punches"
    )
    assert report.ok, report.error
    assert await _counts(db, "Gate to punches") == (0, 0, 250)  # advanced, stored as punches
    async with db.unit() as uow:
        audit = await uow.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.action == "punch.import")
        )
    assert audit == 3  # one import per batch, in the batch's transaction
