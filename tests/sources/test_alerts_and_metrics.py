"""Alerts mail the department contact once per incident; missing days alert too; metrics."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import select, update

from batchops_core.accounts import UserInfo
from batchops_core.enums import IncidentStatus, Role
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import Department, Incident
from batchops_core.sources.cadence import today
from batchops_core.sources.health import SourceMetrics, alert_missing, settle_processing
from batchops_core.sources.service import add_source
from batchops_core.sources.sync import sync_source
from tests.mailserver import MailServer, mailserver, smtp_settings  # noqa: F401 (fixture)
from tests.sources.conftest import sqlite_config

Users = dict[Role, UserInfo]


async def test_a_failing_source_mails_its_department_once(
    db: Database,
    db_settings: Settings,
    users: Users,
    external_sqlite: Path,
    mailserver: MailServer,  # noqa: F811
) -> None:
    settings = smtp_settings(db_settings, mailserver)
    async with db.unit() as uow:
        await uow.execute(
            update(Department)
            .where(Department.name == "Attendance")
            .values(contact_email="attendance-head@school.example")
        )
        await add_source(
            uow,
            actor=users[Role.ADMIN].actor,
            name="Gate",
            kind="database",
            department="Attendance",
            config=sqlite_config(external_sqlite, alert_after_failures=2) | {"table": "gone"},
        )
    for _ in range(3):
        await sync_source(db, settings, actor=users[Role.ADMIN].actor, name="Gate")
    [message] = mailserver.wait_for(1)
    assert message.recipients == ["attendance-head@school.example"]
    assert "Source Gate needs attention" in message.subject and "gone" in message.text
    async with db.unit() as uow:
        [incident] = list(await uow.scalars(select(Incident)))
    assert incident.occurrences == 2 and incident.error_code == "SOURCE_FAILING"
    assert len(mailserver.messages) == 1  # updated, not re-announced


async def test_missing_days_alert_resolve_and_metrics(
    db: Database, db_settings: Settings, users: Users, external_sqlite: Path
) -> None:
    yesterday = today(db_settings.timezone) - timedelta(days=1)
    start = yesterday - timedelta(days=9)
    config = sqlite_config(
        external_sqlite,
        cadence="0 6 * * *",
        alert_after_missing=3,
        expected_from=start.isoformat(),
    )
    async with db.unit() as uow:
        await add_source(
            uow,
            actor=users[Role.ADMIN].actor,
            name="Gate",
            kind="database",
            department="Attendance",
            config=config,
        )
    counts = await alert_missing(db, db_settings, days=10)
    assert counts == {"Gate": 10}
    async with db.unit() as uow:
        [incident] = list(await uow.scalars(select(Incident)))
    assert incident.error_code == "SOURCE_MISSING" and "10 expected days" in incident.message

    registry = CollectorRegistry()
    metrics = SourceMetrics(registry)
    [figures] = await metrics.refresh(db, db_settings)
    assert figures.missing_days == 10 and figures.rows == 0
    text = generate_latest(registry).decode()
    assert 'batchops_source_missing_days{source="Gate"} 10.0' in text

    await sync_source(db, db_settings, actor=users[Role.ADMIN].actor, name="Gate")
    async with db.unit() as uow:
        incident = await uow.get(Incident, incident.id)
    assert incident.status is IncidentStatus.RESOLVED  # data arrived
    [figures] = await metrics.refresh(db, db_settings)
    assert figures.rows == 250 and figures.jobs == {"succeeded": 3}
    assert (
        'batchops_source_jobs{result="succeeded",source="Gate"} 3.0'
        in generate_latest(registry).decode()
    )
    assert await settle_processing(db, db_settings) == {}
