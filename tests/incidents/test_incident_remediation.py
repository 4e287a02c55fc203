"""Remediation plans (pure) and the remediation hooks the daemon calls (both databases)."""

from __future__ import annotations

from sqlalchemy import select

from batchops_core.enums import IncidentStatus, Remediation, TicketStatus
from batchops_core.infra.db import Database
from batchops_core.models import Incident, IncidentEvent, Ticket
from batchops_core.remediation import (
    describe_change,
    mark_auto_resolved,
    plan_retry,
    record_auto_retry,
    remediation_for,
)
from tests.incidents.conftest import MakeFailure

SEED_DELIMITERS = {"candidates": [";", "\t", "|", ","]}
SEED_ENCODINGS = {"encodings": ["cp1252", "latin-1", "utf-16"]}


def _failed(args: dict[str, object], **details: object) -> dict[str, object]:
    return args | {"failure_details": details}


def test_delimiter_plan_takes_the_delimiter_the_loader_saw_giving_most_columns() -> None:
    args = _failed(SEED_DELIMITERS, delimiter=",", candidates={"|": 3, "\t": 9})
    config = {"read_options": {"delimiter": ",", "encoding": "utf-8"}, "group_by": "class"}
    plan = plan_retry(Remediation.REREAD_DELIMITER, args, "CSV_SINGLE_COLUMN", config)
    assert plan == {"read_options": {"delimiter": "\t", "encoding": "utf-8"}, "group_by": "class"}
    assert config["read_options"] == {"delimiter": ",", "encoding": "utf-8"}, "input unchanged"
    assert set(plan) <= {"read_options", "group_by"}, "no keys the pipeline would refuse"
    assert describe_change(config, plan) == "retrying with delimiter '\\t'"


def test_delimiter_plan_without_hints_walks_the_list_and_runs_out() -> None:
    config: dict[str, object] = {}
    tried = []
    used = ","
    while True:
        args = _failed(SEED_DELIMITERS, delimiter=used)
        plan = plan_retry(Remediation.REREAD_DELIMITER, args, "CSV_DELIMITER", config)
        if plan is None:
            break
        used = plan["read_options"]["delimiter"]
        tried.append(used)
        config = plan
        assert len(tried) < 10, "the plan must terminate"
    assert tried == [";", "\t", "|", ","]


def test_encoding_plan_walks_the_list_after_the_failed_encoding() -> None:
    detected = plan_retry(
        Remediation.REREAD_ENCODING, _failed(SEED_ENCODINGS, encoding="utf-8"), "CSV_ENCODING", {}
    )
    assert detected is not None and detected["read_options"] == {"encoding": "cp1252"}
    second = plan_retry(
        Remediation.REREAD_ENCODING,
        _failed(SEED_ENCODINGS, encoding="cp1252"),
        "CSV_ENCODING",
        detected,
    )
    assert second is not None and second["read_options"] == {"encoding": "latin-1"}
    last = {"read_options": {"encoding": "utf-16"}}
    assert plan_retry(Remediation.REREAD_ENCODING, SEED_ENCODINGS, "CSV_ENCODING", last) is None


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


def test_retry_later_keeps_the_config_and_none_plans_nothing() -> None:
    config = {"read_options": {"delimiter": ";"}}
    assert plan_retry(Remediation.RETRY_LATER, {"delay_seconds": 60}, "INTERNAL", config) == config
    assert plan_retry(Remediation.NONE, {}, "PDF_NO_TABLE", {}) is None


async def test_remediation_for_an_incident_comes_from_its_known_error(
    db: Database, failed_upload: MakeFailure
) -> None:
    _, incident_id = await failed_upload()
    async with db.unit() as session:
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
    async with db.unit() as session:
        incident = await session.get(Incident, incident_id)
        assert incident is not None and incident.auto_retry_count == 1


async def test_mark_auto_resolved_puts_the_reason_on_the_timeline(
    db: Database, failed_upload: MakeFailure
) -> None:
    _, incident_id = await failed_upload()
    reason = "automatic retry with delimiter ';' succeeded"
    async with db.unit() as session:
        await mark_auto_resolved(session, incident_id=incident_id, reason=reason)
    async with db.unit() as session:
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
