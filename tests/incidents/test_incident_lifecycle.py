"""Incident services on both databases: permissions, lifecycle, timeline, queue filters, retry."""

from __future__ import annotations

import dataclasses

import pytest

from batchops_core.accounts import UserInfo
from batchops_core.enums import (
    IncidentStatus,
    Role,
    Severity,
    Stage,
    TicketStatus,
    UploadStatus,
)
from batchops_core.errors import NotFound, PermissionDenied, ValidationFailed
from batchops_core.incidents import (
    FailureInfo,
    InvalidTransition,
    record_stage_failure,
    record_task_failure,
)
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database, open_database
from batchops_core.models import KnownError, Upload
from batchops_core.services.incidents import (
    analyze_incident,
    archive_incident,
    assign_incident,
    get_incident,
    incident_event,
    list_assignees,
    list_incidents,
    reopen_incident,
    resolve_incident,
    retry_incident,
)
from batchops_core.worker.dispatcher import Dispatcher
from tests.incidents.conftest import DELIMITER_FAILURE, MakeFailure

Users = dict[Role, UserInfo]


async def test_users_read_but_cannot_manage(
    db: Database, users: Users, failed_upload: MakeFailure
) -> None:
    _, incident_id = await failed_upload()
    user = users[Role.USER].actor
    async with db.unit() as session:
        page = await list_incidents(session, actor=user)
        detail = await get_incident(session, actor=user, incident_id=incident_id)
        assert [r.id for r in page.items] == [incident_id] and detail.id == incident_id
        for action in (
            assign_incident(session, actor=user, incident_id=incident_id, assignee_id=None),
            analyze_incident(session, actor=user, incident_id=incident_id, root_cause="x"),
            resolve_incident(
                session, actor=user, incident_id=incident_id, root_cause="a", corrective_action="b"
            ),
            archive_incident(session, actor=user, incident_id=incident_id),
            reopen_incident(session, actor=user, incident_id=incident_id),
            list_assignees(session, actor=user),
        ):
            with pytest.raises(PermissionDenied, match="manage issues"):
                await action
    async with db.unit() as session:
        after = await get_incident(session, actor=user, incident_id=incident_id)
    assert after.status is IncidentStatus.OPEN and len(after.timeline) == len(detail.timeline)


async def test_full_lifecycle_with_timeline_mtta_and_mttr(
    db: Database, users: Users, failed_upload: MakeFailure
) -> None:
    upload_id, incident_id = await failed_upload()
    mod = users[Role.MODERATOR]
    admin = users[Role.ADMIN].actor
    async with db.unit() as session:
        picks = await list_assignees(session, actor=mod.actor)
        assert [p.username for p in picks] == ["admin1", "moderator1"]
        detail = await assign_incident(
            session, actor=admin, incident_id=incident_id, assignee_id=mod.id
        )
        assert detail.assignee == "moderator1" and detail.status is IncidentStatus.OPEN
        assert detail.ticket is not None and detail.ticket.assignee == "moderator1"
        assert detail.acknowledged_at is None
        detail = await analyze_incident(
            session,
            actor=mod.actor,
            incident_id=incident_id,
            impact_summary="Fees report late by a day",
            analysis_notes="Exported from the new finance system",
        )
        assert detail.status is IncidentStatus.IN_PROGRESS
        assert detail.acknowledged_at is not None and detail.time_to_acknowledge is not None
        assert detail.impact_summary == "Fees report late by a day"
        assert detail.upload_filename == "fees.csv" and detail.upload_status is UploadStatus.FAILED
        assert detail.known_error == "Wrong CSV delimiter" and detail.known_error_fix
        with pytest.raises(ValidationFailed, match="root cause is required"):
            await resolve_incident(
                session,
                actor=mod.actor,
                incident_id=incident_id,
                root_cause=" ",
                corrective_action="re-exported",
            )
        with pytest.raises(ValidationFailed, match="corrective action is required"):
            await resolve_incident(
                session,
                actor=mod.actor,
                incident_id=incident_id,
                root_cause="semicolons",
                corrective_action="",
            )
        detail = await resolve_incident(
            session,
            actor=mod.actor,
            incident_id=incident_id,
            root_cause="Finance exports with semicolons",
            corrective_action="Asked finance to export with commas",
        )
        assert detail.status is IncidentStatus.RESOLVED and detail.time_to_resolve is not None
        assert detail.ticket is not None and detail.ticket.status is TicketStatus.CLOSED
        detail = await reopen_incident(
            session, actor=admin, incident_id=incident_id, reason="failed again on Monday"
        )
        assert detail.status is IncidentStatus.OPEN and detail.resolved_at is None
        assert detail.acknowledged_at is not None, "the first acknowledgement is kept"
        assert detail.ticket is not None and detail.ticket.status is TicketStatus.OPEN
        await resolve_incident(
            session, actor=admin, incident_id=incident_id, root_cause="a", corrective_action="b"
        )
        detail = await archive_incident(session, actor=admin, incident_id=incident_id)
    assert detail.status is IncidentStatus.ARCHIVED and detail.archived_at is not None
    assert [(e.kind, e.actor) for e in detail.timeline] == [
        ("opened", "system"),
        ("known_error", "system"),
        ("assigned", "admin1"),
        ("analyzed", "moderator1"),
        ("resolved", "moderator1"),
        ("reopened", "admin1"),
        ("resolved", "admin1"),
        ("archived", "admin1"),
    ]
    assert detail.timeline[5].detail == "failed again on Monday"
    times = [e.at for e in detail.timeline]
    assert times == sorted(times)
    event = incident_event(detail)
    assert (event.type, event.id, event.status) == ("incident.updated", incident_id, "archived")
    assert upload_id == detail.upload_id


async def test_invalid_transitions_are_refused_with_a_sentence(
    db: Database, users: Users, failed_upload: MakeFailure
) -> None:
    _, incident_id = await failed_upload()
    admin = users[Role.ADMIN].actor
    async with db.unit() as session:
        with pytest.raises(InvalidTransition, match=r"is open; only an incident that is resolved"):
            await archive_incident(session, actor=admin, incident_id=incident_id)
        with pytest.raises(InvalidTransition, match="can be reopened"):
            await reopen_incident(session, actor=admin, incident_id=incident_id)
        # open -> resolved directly is allowed (and acknowledges)
        detail = await resolve_incident(
            session, actor=admin, incident_id=incident_id, root_cause="a", corrective_action="b"
        )
        assert detail.acknowledged_at is not None
        with pytest.raises(InvalidTransition, match="is resolved"):
            await resolve_incident(
                session, actor=admin, incident_id=incident_id, root_cause="a", corrective_action="b"
            )
        with pytest.raises(InvalidTransition, match="can be analyzed"):
            await analyze_incident(session, actor=admin, incident_id=incident_id, root_cause="c")
        with pytest.raises(InvalidTransition, match="can be assigned"):
            await assign_incident(session, actor=admin, incident_id=incident_id, assignee_id=None)
        await archive_incident(session, actor=admin, incident_id=incident_id)
        with pytest.raises(InvalidTransition, match="is archived"):
            await archive_incident(session, actor=admin, incident_id=incident_id)
        with pytest.raises(InvalidTransition, match="is archived"):
            await reopen_incident(session, actor=admin, incident_id=incident_id)
        with pytest.raises(NotFound):
            await get_incident(session, actor=admin, incident_id=999_999)


async def test_only_staff_can_be_assigned(
    db: Database, users: Users, failed_upload: MakeFailure
) -> None:
    _, incident_id = await failed_upload()
    admin = users[Role.ADMIN].actor
    async with db.unit() as session:
        with pytest.raises(ValidationFailed, match="active admin or moderator"):
            await assign_incident(
                session, actor=admin, incident_id=incident_id, assignee_id=users[Role.USER].id
            )
        await assign_incident(
            session, actor=admin, incident_id=incident_id, assignee_id=users[Role.ADMIN].id
        )
        detail = await assign_incident(
            session, actor=admin, incident_id=incident_id, assignee_id=None
        )
    assert detail.assignee is None and detail.timeline[-1].detail == "unassigned"


async def test_analyze_matches_a_known_error_added_later(db: Database, users: Users) -> None:
    failure = FailureInfo(code="GRADE_SCALE", message="scores above 100 in column score")
    async with db.unit() as session:
        incident_id = await record_task_failure(session, task="ingest_department", failure=failure)
    async with db.unit() as session:
        session.add(
            KnownError(
                name="Scores out of range",
                pattern=r"^GRADE_SCALE: scores above",
                severity=Severity.LOW,
                category="data",
                root_cause="The exam system exports percentages times ten.",
                fix="Divide by ten at the source.",
            )
        )
    async with db.unit() as session:
        detail = await analyze_incident(
            session, actor=users[Role.MODERATOR].actor, incident_id=incident_id
        )
    assert detail.known_error == "Scores out of range" and detail.severity is Severity.LOW
    assert detail.root_cause == "The exam system exports percentages times ten."
    assert [e.kind for e in detail.timeline][-2:] == ["known_error", "analyzed"]


async def test_queue_filters_search_and_pagination(
    db: Database, users: Users, failed_upload: MakeFailure
) -> None:
    ids = []
    for source in ("Fees", "Library", "Exams", "Attendance", "Admissions"):
        ids.append((await failed_upload(source=source))[1])
    busy = FailureInfo(code="INTERNAL", message="database is locked", stage=Stage.PUBLISH)
    ids.append((await failed_upload(busy, source="Fees"))[1])
    admin = users[Role.ADMIN].actor
    async with db.unit() as session:
        await assign_incident(
            session, actor=admin, incident_id=ids[1], assignee_id=users[Role.MODERATOR].id
        )
        await resolve_incident(
            session, actor=admin, incident_id=ids[2], root_cause="x", corrective_action="y"
        )
    async with db.unit() as session:
        viewer = users[Role.USER].actor
        everything = await list_incidents(session, actor=viewer)
        page1 = await list_incidents(session, actor=viewer, limit=4)
        page2 = await list_incidents(session, actor=viewer, offset=4, limit=4)
        high = await list_incidents(session, actor=viewer, severity=Severity.HIGH)
        resolved = await list_incidents(session, actor=viewer, status=IncidentStatus.RESOLVED)
        mine = await list_incidents(session, actor=viewer, assignee_id=users[Role.MODERATOR].id)
        library = await list_incidents(session, actor=viewer, search="LIBRARY")
        locked = await list_incidents(session, actor=viewer, search="is locked")
    assert everything.total == 6 and len(everything.items) == 6
    assert [r.id for r in page1.items + page2.items] == [r.id for r in everything.items]
    assert page1.has_next and not page2.has_next and page2.total == 6
    assert [r.id for r in high.items] == [ids[5]] and high.items[0].known_error == "Database busy"
    assert [r.id for r in resolved.items] == [ids[2]]
    assert [r.id for r in mine.items] == [ids[1]] and mine.items[0].assignee == "moderator1"
    assert [r.id for r in library.items] == [ids[1]]
    assert [r.id for r in locked.items] == [ids[5]]


async def test_retry_requeues_the_upload_and_enqueues_from_the_failed_stage(
    redis_settings: Settings, users: Users
) -> None:
    db = open_database(redis_settings)
    dispatcher = await Dispatcher.connect(db, redis_settings)
    try:
        async with db.unit() as session:
            upload = Upload(
                filename="fees.csv", sha256="1" * 64, source="Fees", status=UploadStatus.FAILED
            )
            session.add(upload)
            await session.flush()
            incident_id = await record_stage_failure(
                session,
                source="Fees",
                failure=dataclasses.replace(DELIMITER_FAILURE, stage=Stage.VALIDATE),
                upload_id=upload.id,
            )
            upload_id = upload.id
        mod = users[Role.MODERATOR].actor
        with pytest.raises(PermissionDenied):
            await retry_incident(
                db, dispatcher, actor=users[Role.USER].actor, incident_id=incident_id
            )
        detail = await retry_incident(db, dispatcher, actor=mod, incident_id=incident_id)
        assert detail.retry_count == 1 and detail.status is IncidentStatus.IN_PROGRESS
        assert detail.upload_status is UploadStatus.QUEUED
        assert detail.timeline[-1].kind == "retried" and detail.timeline[-1].actor == "moderator1"
        assert dispatcher.pool is not None
        queued = await dispatcher.pool.queued_jobs()
        calls = [(j.function, tuple(j.args)) for j in queued]
        assert ("retry_upload", (upload_id, "validate")) in calls
        # While the upload is queued (or processing) a second retry is refused.
        with pytest.raises(InvalidTransition, match="is queued, not failed"):
            await retry_incident(db, dispatcher, actor=mod, incident_id=incident_id)
        async with db.unit() as session:
            row = await session.get(Upload, upload_id)
            assert row is not None and row.status is UploadStatus.QUEUED
        async with db.unit() as session:
            after = await get_incident(session, actor=mod, incident_id=incident_id)
        assert after.retry_count == 1
        # An automation incident has no upload to retry.
        async with db.unit() as session:
            task_incident = await record_task_failure(
                session, task="run_daily_backup", failure=FailureInfo(code="X", message="y")
            )
        with pytest.raises(ValidationFailed, match="not about an upload"):
            await retry_incident(db, dispatcher, actor=mod, incident_id=task_incident)
    finally:
        await dispatcher.close()
        await db.dispose()
