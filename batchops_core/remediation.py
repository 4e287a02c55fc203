"""Automatic remediation: what to retry a failed upload with, as named by its known error.

The daemon's `process_upload` task, after a stage failure recorded an incident, asks
`remediation_for(incident)`; if there is one, `plan_retry` gives the upload's next
`process_config` (or None when nothing is left to try), the task records the attempt with
`record_auto_retry`, reruns the pipeline, and on success calls `mark_auto_resolved`.

Plans are stateless: they change only `process_config["read_options"]` (the pipeline refuses
unknown top-level plan keys, and operators see this config), and derive what to try next from
the current options and the failing stage's details. Encodings and listed delimiters are walked
in their listed order *after* the current one, so repeated failures run out of candidates and
the plan returns None; the daemon also caps automatic retries per incident (`worker.max_tries`).
A delimiter the loader saw giving more columns (`details["candidates"]`) is tried first.
"""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core.enums import Remediation, Stage, StepStatus
from batchops_core.incidents import (
    ACTIVE_STATUSES,
    TimelineKind,
    add_event,
    close_ticket,
    resolve,
)
from batchops_core.infra.clock import utcnow
from batchops_core.models import Incident, JobRun, JobRunStep, KnownError
from batchops_core.pipeline.decode import REPLACEMENT_NOTE

READ_OPTION_KEYS = ("delimiter", "encoding", "sheet", "column_aliases")
DEFAULT_DELIMITERS = (",", ";", "\t", "|")
DEFAULT_ENCODINGS = ("utf-8", "cp1252", "latin-1", "utf-16")


def _after(candidates: list[Any], current: Any, failed: Any) -> Any | None:
    """The first candidate after the configured `current` value in list order (from the start
    when nothing or an unlisted value is configured), skipping the value that just failed."""
    start = candidates.index(current) + 1 if current in candidates else 0
    for value in candidates[start:]:
        if value not in (current, failed):
            return value
    return None


def _next_delimiter(args: dict[str, Any], read: dict[str, Any]) -> str | None:
    details = args.get("failure_details") or {}
    current, used = read.get("delimiter"), details.get("delimiter")
    seen = details.get("candidates")
    if isinstance(seen, dict):
        ranked = sorted(seen, key=lambda d: -int(seen[d]))
        for value in ranked:
            if isinstance(value, str) and len(value) == 1 and value not in (current, used):
                return value
    listed = [d for d in (args.get("candidates") or DEFAULT_DELIMITERS) if isinstance(d, str)]
    return _after(listed, current, used)


def plan_retry(
    remediation: Remediation,
    args: dict[str, Any],
    failure_code: str,
    process_config: dict[str, Any],
) -> dict[str, Any] | None:
    """The `process_config` to retry with, or None when nothing is left to try.

    `args` are the known error's `remediation_args`, optionally with `failure_details` (the
    failing stage's details, e.g. the delimiter it used and those giving more columns).
    `failure_code` is the failing error code; the known error that matched it already decided
    that the remediation applies, so today's plans do not need it. `RETRY_LATER` returns the
    same configuration (the caller delays the retry by `args["delay_seconds"]`).
    """
    config = copy.deepcopy(process_config or {})
    read = config.get("read_options")
    read = dict(read) if isinstance(read, dict) else {}
    details = args.get("failure_details") or {}
    if remediation is Remediation.REREAD_DELIMITER:
        value = _next_delimiter(args, read)
        if value is None:
            return None
        read["delimiter"] = value
    elif remediation is Remediation.REREAD_ENCODING:
        encodings = [e for e in (args.get("encodings") or DEFAULT_ENCODINGS) if isinstance(e, str)]
        current, used = read.get("encoding"), details.get("encoding")
        value = _after(encodings, current, used)
        if value is None:
            return None
        read["encoding"] = value
    elif remediation is Remediation.APPLY_ALIAS:
        current_aliases = dict(read.get("column_aliases") or {})
        aliases = args.get("aliases") or {}
        missing = {k: v for k, v in aliases.items() if k not in current_aliases}
        if not missing:
            return None
        read["column_aliases"] = current_aliases | missing
    elif remediation is not Remediation.RETRY_LATER:
        return None
    config["read_options"] = read
    return config


def describe_change(before: dict[str, Any], after: dict[str, Any]) -> str:
    """One phrase saying which read options a plan changed, for the timeline."""
    old = (before or {}).get("read_options") or {}
    new = after.get("read_options") or {}
    changes = [f"{key} {new[key]!r}" for key in READ_OPTION_KEYS if new.get(key) != old.get(key)]
    return "retrying with " + (", ".join(changes) if changes else "the same options")


async def remediation_for(
    session: AsyncSession, *, incident_id: int
) -> tuple[Remediation, dict[str, Any]] | None:
    """The remediation named by the incident's known error, with its arguments.

    None when the incident is no longer open or in progress, has no active known error, or its
    known error names no remediation. The arguments include `failure_details`.
    """
    incident = await session.get(Incident, incident_id)
    if incident is None or incident.status not in ACTIVE_STATUSES:
        return None
    if incident.known_error_id is None:
        return None
    known = await session.get(KnownError, incident.known_error_id)
    if known is None or not known.active or known.remediation is Remediation.NONE:
        return None
    args = dict(known.remediation_args or {})
    args["failure_details"] = dict(incident.details or {})
    return known.remediation, args


async def record_auto_retry(
    session: AsyncSession, *, incident_id: int, remediation: Remediation, detail: str
) -> None:
    """Count an automatic retry and put it on the timeline (system actor)."""
    incident = await session.get(Incident, incident_id)
    if incident is None:
        return
    incident.auto_retry_count += 1
    add_event(session, incident_id, TimelineKind.AUTO_RETRIED, f"{remediation.value}: {detail}")


async def _unreadable_text_note(session: AsyncSession, upload_id: int | None) -> str:
    """The loader's U+FFFD line from the upload's latest standardize step, or "".

    A re-read that "succeeds" with replacement characters has only moved the damage into the
    data (issue #10.6): such a retry must not close the incident."""
    if upload_id is None:
        return ""
    log = await session.scalar(
        select(JobRunStep.log)
        .join(JobRun, JobRun.id == JobRunStep.run_id)
        .where(
            JobRun.upload_id == upload_id,
            JobRunStep.stage == Stage.STANDARDIZE,
            JobRunStep.status == StepStatus.SUCCEEDED,
        )
        .order_by(JobRun.id.desc())
        .limit(1)
    )
    for line in log or []:
        if isinstance(line, str) and line.startswith(REPLACEMENT_NOTE):
            return line[len(REPLACEMENT_NOTE) :].strip()
    return ""


async def mark_auto_resolved(session: AsyncSession, *, incident_id: int, reason: str) -> None:
    """Resolve the incident because a remediation made the retry succeed (system actor).

    Not when the retried upload's data still holds U+FFFD (the standardize step log says so):
    then the success goes on the timeline and the incident stays open. Idempotent: an incident
    already resolved or archived is left as it is.
    """
    incident = await session.get(Incident, incident_id)
    if incident is None or incident.status not in ACTIVE_STATUSES:
        return
    now = utcnow()
    garbled = await _unreadable_text_note(session, incident.upload_id)
    if garbled:
        add_event(
            session,
            incident_id,
            TimelineKind.AUTO_RETRIED,
            f"{reason}, but the data still holds unreadable text, so the incident stays open "
            f"for a person to check the encoding ({garbled})",
            at=now,
        )
        return
    root_cause = incident.root_cause
    if not root_cause and incident.known_error_id is not None:
        known = await session.get(KnownError, incident.known_error_id)
        root_cause = known.root_cause if known is not None else ""
    resolve(
        incident,
        root_cause=root_cause or f"{incident.error_code} (resolved by automatic remediation)",
        corrective_action=reason,
        now=now,
    )
    add_event(session, incident_id, TimelineKind.AUTO_RESOLVED, reason, at=now)
    await close_ticket(session, incident_id, now, f"Resolved automatically: {reason}")


__all__ = [
    "describe_change",
    "mark_auto_resolved",
    "plan_retry",
    "record_auto_retry",
    "remediation_for",
]
