"""Recording failures: tickets, timeline, de-duplication window, known-error matching."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

from sqlalchemy import func, select, update

from batchops_core.enums import IncidentStatus, Severity, Stage, TicketStatus
from batchops_core.incidents import (
    TASK_TIMEOUT,
    FailureInfo,
    record_failure,
    record_stage_failure,
    record_task_failure,
)
from batchops_core.infra.config import IncidentSettings, Settings
from batchops_core.infra.db import Database
from batchops_core.models import Incident, IncidentEvent, KnownError, Ticket
from tests.incidents.conftest import DELIMITER_FAILURE, MakeFailure


async def _timeline(db: Database, incident_id: int) -> list[tuple[str, str]]:
    async with db.unit() as session:
        rows = await session.execute(
            select(IncidentEvent.kind, IncidentEvent.detail)
            .where(IncidentEvent.incident_id == incident_id)
            .order_by(IncidentEvent.id)
        )
        return [(k, d) for k, d in rows]


async def test_a_failure_opens_an_incident_with_ticket_and_known_error(
    db: Database, failed_upload: MakeFailure
) -> None:
    upload_id, incident_id = await failed_upload()
    async with db.unit() as session:
        incident = await session.get(Incident, incident_id)
        ticket = await session.scalar(select(Ticket).where(Ticket.incident_id == incident_id))
        known = await session.scalar(
            select(KnownError).where(KnownError.name == "Wrong CSV delimiter")
        )
    assert incident is not None and ticket is not None and known is not None
    assert incident.status is IncidentStatus.OPEN and incident.upload_id == upload_id
    assert incident.known_error_id == known.id
    assert (incident.severity, incident.category) == (Severity.MEDIUM, "format")
    assert incident.root_cause.startswith("The file was read with the wrong delimiter")
    assert incident.details == {"delimiter": ",", "candidates": {";": 33}}
    assert ticket.status is TicketStatus.OPEN and "CSV_SINGLE_COLUMN" in ticket.title
    kinds = [k for k, _ in await _timeline(db, incident_id)]
    assert kinds == ["opened", "known_error"]


async def test_same_failure_within_the_window_adds_an_occurrence(
    db: Database, failed_upload: MakeFailure
) -> None:
    _, first = await failed_upload()
    second_upload, second = await failed_upload()
    assert second == first
    async with db.unit() as session:
        incident = await session.get(Incident, first)
        count = await session.scalar(select(func.count(Incident.id)))
        tickets = await session.scalar(select(func.count(Ticket.id)))
    assert incident is not None and incident.occurrences == 2
    assert incident.upload_id == second_upload, "the newest upload is the one to retry"
    assert count == 1 and tickets == 1
    timeline = await _timeline(db, first)
    assert timeline[-1][0] == "occurrence" and f"upload #{second_upload}" in timeline[-1][1]


async def test_same_failure_after_the_window_opens_a_new_incident(
    db: Database, db_settings: Settings, failed_upload: MakeFailure
) -> None:
    _, first = await failed_upload()
    window = db_settings.incidents.dedup_window_minutes
    async with db.unit() as session:
        incident = await session.get(Incident, first)
        assert incident is not None
        await session.execute(
            update(Incident)
            .where(Incident.id == first)
            .values(last_seen_at=incident.last_seen_at - timedelta(minutes=window + 1))
        )
    _, second = await failed_upload()
    assert second != first


async def test_other_source_stage_or_code_and_resolved_incidents_are_not_merged(
    db: Database, failed_upload: MakeFailure
) -> None:
    _, first = await failed_upload()
    _, other_source = await failed_upload(source="Library")
    other_code = dataclasses.replace(DELIMITER_FAILURE, code="CSV_ENCODING")
    _, different = await failed_upload(other_code)
    assert len({first, other_source, different}) == 3
    async with db.unit() as session:
        await session.execute(
            update(Incident).where(Incident.id == first).values(status=IncidentStatus.RESOLVED)
        )
    _, after_fix = await failed_upload()
    assert after_fix not in {first, other_source, different}


async def test_a_zero_window_never_merges(db: Database, db_settings: Settings) -> None:
    settings = dataclasses.replace(db_settings, incidents=IncidentSettings(dedup_window_minutes=0))
    async with db.unit() as session:
        a = await record_stage_failure(
            session, source="Fees", failure=DELIMITER_FAILURE, settings=settings
        )
        b = await record_stage_failure(
            session, source="Fees", failure=DELIMITER_FAILURE, settings=settings
        )
    assert a != b


async def test_known_error_stage_filter_and_stage_agnostic_patterns(db: Database) -> None:
    missing = FailureInfo(
        code="MISSING_COLUMN",
        message="required column 'student_id' not found; the file has: roll_no, maths",
        stage=Stage.VALIDATE,
    )
    async with db.unit() as session:
        at_validate = await record_failure(session, source="Exams", failure=missing)
        at_standardize = await record_failure(
            session, source="Exams", failure=dataclasses.replace(missing, stage=Stage.STANDARDIZE)
        )
        busy = await record_failure(
            session,
            source="Exams",
            failure=FailureInfo(
                code="INTERNAL", message="OperationalError: database is locked", stage=Stage.PUBLISH
            ),
        )
        plain = await record_failure(
            session, source="Exams", failure=FailureInfo(code="NO_DATA", message="no rows")
        )
    assert at_validate.known_error is not None
    assert at_validate.known_error.name == "Student identifier under another name"
    assert at_standardize.known_error is None, "the pattern is limited to the validate stage"
    assert busy.known_error is not None and busy.known_error.name == "Database busy"
    async with db.unit() as session:
        busy_row = await session.get(Incident, busy.incident_id)
        plain_row = await session.get(Incident, plain.incident_id)
    assert busy_row is not None and busy_row.severity is Severity.HIGH
    assert busy_row.category == "infrastructure"
    assert plain_row is not None and plain_row.known_error_id is None
    assert (plain_row.severity, plain_row.category) == (Severity.MEDIUM, "data")


async def test_inactive_or_broken_known_errors_never_match(db: Database) -> None:
    async with db.unit() as session:
        await session.execute(update(KnownError).values(active=False))
        session.add(KnownError(name="Broken", pattern="([unclosed", active=True))
    async with db.unit() as session:
        recorded = await record_failure(session, source="Fees", failure=DELIMITER_FAILURE)
    assert recorded.known_error is None


async def test_task_failures_and_timeouts_become_automation_incidents(
    db: Database, db_settings: Settings
) -> None:
    async with db.unit() as session:
        timeout = FailureInfo(code=TASK_TIMEOUT, message="run_daily_backup took longer than 600 s")
        first = await record_task_failure(
            session, task="run_daily_backup", failure=timeout, settings=db_settings
        )
        again = await record_task_failure(
            session, task="run_daily_backup", failure=timeout, settings=db_settings
        )
        other = await record_task_failure(
            session,
            task="fetch_url",
            failure=FailureInfo(code="FETCH_FAILED", message="HTTP 404 for the URL"),
            settings=db_settings,
        )
        incident = await session.get(Incident, first)
    assert first == again
    assert incident is not None and incident.upload_id is None and incident.stage is None
    assert incident.source == "task:run_daily_backup" and incident.occurrences == 2
    assert incident.title == "task:run_daily_backup: TASK_TIMEOUT at task"
    # A task timeout is not the transient "Database busy" known error: no seeded pattern claims
    # it, so it is filed under automation like any failure no pattern knows.
    assert incident.category == "automation" and incident.known_error_id is None
    async with db.unit() as session:
        unknown = await session.get(Incident, other)
    assert unknown is not None and unknown.category == "automation"
    assert unknown.known_error_id is None and other != first


async def test_concurrent_recorders_of_one_failure_make_one_incident(
    db: Database, db_settings: Settings
) -> None:
    async def recorder() -> int:
        async with db.unit() as session:
            return await record_stage_failure(
                session, source="Fees", failure=DELIMITER_FAILURE, settings=db_settings
            )

    ids = await asyncio.gather(*(recorder() for _ in range(4)))
    assert len(set(ids)) == 1
    async with db.unit() as session:
        incident = await session.get(Incident, ids[0])
        count = await session.scalar(select(func.count(Incident.id)))
    assert count == 1 and incident is not None and incident.occurrences == 4
