"""Remediation plans (pure) and the remediation hooks the daemon calls (both databases)."""

from __future__ import annotations

from sqlalchemy import select

from batchops_core.db import Database
from batchops_core.enums import IncidentStatus, Remediation, TicketStatus
from batchops_core.models import Incident, IncidentEvent, Ticket
from batchops_core.remediation import (
    MAX_AUTO_ATTEMPTS,
    describe_change,
    mark_auto_resolved,
    plan_retry,
    record_auto_retry,
    remediation_for,
)
from tests.incidents.conftest import MakeFailure

SEED_DELIMITERS = {"candidates": [";", "\t", "|", ","]}


def test_delimiter_plan_prefers_what_the_stage_saw_then_walks_the_candidates() -> None:
    seen = {"delimiter": ",", "candidates": {"|": 3, "\t": 9}}
    args = SEED_DELIMITERS | {"failure_details": seen}
    config = {"read_options": {"delimiter": ","}, "plan": "keep me"}
    first = plan_retry(Remediation.REREAD_DELIMITER, args, "CSV_SINGLE_COLUMN", config)
    assert first is not None and first["read_options"]["delimiter"] == "\t"  # 9 columns
    assert first["plan"] == "keep me" and config["read_options"]["delimiter"] == ","  # no mutation
    second = plan_retry(Remediation.REREAD_DELIMITER, args, "CSV_SINGLE_COLUMN", first)
    assert second is not None and second["read_options"]["delimiter"] == "|"
    third = plan_retry(Remediation.REREAD_DELIMITER, args, "CSV_SINGLE_COLUMN", second)
    assert third is not None and third["read_options"]["delimiter"] == ";"
    assert plan_retry(Remediation.REREAD_DELIMITER, args, "CSV_SINGLE_COLUMN", third) is None
    assert third["remediation"]["attempts"] == 3
    assert third["remediation"]["tried"]["delimiter"] == ["\t", "|", ";"]
    assert describe_change(config, first) == "retrying with delimiter '\\t'"


def test_encoding_plan_skips_the_encoding_that_failed() -> None:
    args = {"encodings": ["cp1252", "latin-1"], "failure_details": {"encoding": "cp1252"}}
    plan = plan_retry(Remediation.REREAD_ENCODING, args, "CSV_ENCODING", {})
    assert plan is not None and plan["read_options"] == {"encoding": "latin-1"}
    assert plan_retry(Remediation.REREAD_ENCODING, args, "CSV_ENCODING", plan) is None


def test_alias_plan_adds_missing_aliases_once() -> None:
    args = {"aliases": {"roll_no": "student_id", "adm_no": "student_id"}}
    config = {"read_options": {"column_aliases": {"roll_no": "student_id", "Kls": "class"}}}
    plan = plan_retry(Remediation.APPLY_ALIAS, args, "MISSING_COLUMN", config)
    assert plan is not None
    assert plan["read_options"]["column_aliases"] == {
        "roll_no": "student_id",
        "Kls": "class",
        "adm_no": "student_id",
    }
    assert plan_retry(Remediation.APPLY_ALIAS, args, "MISSING_COLUMN", plan) is None


def test_retry_later_and_none_and_the_global_cap() -> None:
    config: dict[str, object] = {}
    for _ in range(2):
        plan = plan_retry(Remediation.RETRY_LATER, {"max_attempts": 2}, "INTERNAL", config)
        assert plan is not None
        config = plan
    assert plan_retry(Remediation.RETRY_LATER, {"max_attempts": 2}, "INTERNAL", config) is None
    assert plan_retry(Remediation.NONE, {}, "PDF_NO_TABLE", {}) is None
    spent = {"remediation": {"attempts": MAX_AUTO_ATTEMPTS, "tried": {}}}
    assert plan_retry(Remediation.REREAD_DELIMITER, SEED_DELIMITERS, "CSV_DELIMITER", spent) is None


async def test_remediation_for_an_incident_comes_from_its_known_error(
    db: Database, failed_upload: MakeFailure
) -> None:
    _, incident_id = await failed_upload()
    async with db.session() as session:
        found = await remediation_for(session, incident_id=incident_id)
        assert found is not None
        remediation, args = found
        assert remediation is Remediation.REREAD_DELIMITER
        assert args["candidates"] == [";", "\t", "|", ","]
        assert args["failure_details"]["candidates"] == {";": 33}
        plan = plan_retry(remediation, args, "CSV_SINGLE_COLUMN", {"read_options": {}})
        assert plan is not None and plan["read_options"]["delimiter"] == ";"
        await record_auto_retry(
            session,
            incident_id=incident_id,
            remediation=remediation,
            detail=describe_change({}, plan),
        )
        assert await remediation_for(session, incident_id=999_999) is None
    async with db.session() as session:
        incident = await session.get(Incident, incident_id)
        assert incident is not None and incident.auto_retry_count == 1


async def test_mark_auto_resolved_puts_the_reason_on_the_timeline(
    db: Database, failed_upload: MakeFailure
) -> None:
    _, incident_id = await failed_upload()
    reason = "automatic retry with delimiter ';' succeeded"
    async with db.session() as session:
        await mark_auto_resolved(session, incident_id=incident_id, reason=reason)
    async with db.session() as session:
        await mark_auto_resolved(session, incident_id=incident_id, reason="again")  # idempotent
        incident = await session.get(Incident, incident_id)
        ticket = await session.scalar(select(Ticket).where(Ticket.incident_id == incident_id))
        events = list(
            await session.scalars(
                select(IncidentEvent)
                .where(IncidentEvent.incident_id == incident_id)
                .order_by(IncidentEvent.id)
            )
        )
        assert await remediation_for(session, incident_id=incident_id) is None
    assert incident is not None and incident.status is IncidentStatus.RESOLVED
    assert incident.corrective_action == reason and incident.resolved_at is not None
    assert incident.root_cause.startswith("The file was read with the wrong delimiter")
    assert ticket is not None and ticket.status is TicketStatus.CLOSED
    assert [(e.kind, e.actor_id, e.detail) for e in events][-1] == ("auto_resolved", None, reason)
    assert sum(e.kind == "auto_resolved" for e in events) == 1
