"""Automatic remediation: what to retry a failed upload with, as named by its known error.

The daemon's `process_upload` task, after a stage failure recorded an incident, asks
`remediation_for(incident)`; if there is one, `plan_retry` gives the upload's next
`process_config` (or None when every option was tried), the task records the attempt with
`record_auto_retry`, reruns the pipeline, and on success calls `mark_auto_resolved`.

What was tried is kept in `process_config["remediation"]` (`attempts`, `tried` per read option),
so the plan is deterministic, survives a worker restart and never loops: each retry changes one
read option to a value not tried before, and `MAX_AUTO_ATTEMPTS` caps the total.
"""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core.clock import utcnow
from batchops_core.enums import Remediation
from batchops_core.incidents import (
    ACTIVE_STATUSES,
    TimelineKind,
    add_event,
    close_ticket,
    resolve,
)
from batchops_core.models import Incident, KnownError

MAX_AUTO_ATTEMPTS = 5
READ_OPTION_KEYS = ("delimiter", "encoding", "sheet", "column_aliases")
DEFAULT_DELIMITERS = (",", ";", "\t", "|")
DEFAULT_ENCODINGS = ("utf-8", "cp1252", "latin-1", "utf-16")


def _history(config: dict[str, Any]) -> dict[str, Any]:
    history = config.setdefault("remediation", {})
    history.setdefault("attempts", 0)
    history.setdefault("tried", {})
    return history


def _next_value(
    option: str,
    candidates: list[Any],
    config: dict[str, Any],
    used: Any,
) -> Any | None:
    read = config.setdefault("read_options", {})
    tried = _history(config)["tried"].setdefault(option, [])
    excluded = {read.get(option), used, *tried}
    for value in candidates:
        if value not in excluded:
            read[option] = value
            tried.append(value)
            return value
    return None


def _delimiter_candidates(args: dict[str, Any]) -> list[str]:
    detected = (args.get("failure_details") or {}).get("candidates") or {}
    ranked = sorted(detected, key=lambda d: -int(detected[d])) if isinstance(detected, dict) else []
    listed = list(args.get("candidates") or DEFAULT_DELIMITERS)
    return [d for d in dict.fromkeys([*ranked, *listed]) if isinstance(d, str) and len(d) == 1]


def plan_retry(
    remediation: Remediation,
    args: dict[str, Any],
    failure_code: str,
    process_config: dict[str, Any],
) -> dict[str, Any] | None:
    """The `process_config` to retry with, or None when nothing is left to try.

    `args` are the known error's `remediation_args`, optionally with `failure_details` (the
    failing stage's details, e.g. the delimiters it saw giving more columns).
    """
    config = copy.deepcopy(process_config or {})
    history = _history(config)
    if remediation is Remediation.NONE or history["attempts"] >= MAX_AUTO_ATTEMPTS:
        return None
    details = args.get("failure_details") or {}
    if remediation is Remediation.REREAD_DELIMITER:
        candidates = _delimiter_candidates(args)
        if _next_value("delimiter", candidates, config, details.get("delimiter")) is None:
            return None
    elif remediation is Remediation.REREAD_ENCODING:
        encodings = list(args.get("encodings") or DEFAULT_ENCODINGS)
        if _next_value("encoding", encodings, config, details.get("encoding")) is None:
            return None
    elif remediation is Remediation.APPLY_ALIAS:
        read = config.setdefault("read_options", {})
        current = dict(read.get("column_aliases") or {})
        missing = {k: v for k, v in (args.get("aliases") or {}).items() if k not in current}
        if not missing:
            return None
        read["column_aliases"] = current | missing
    elif remediation is Remediation.RETRY_LATER and history["attempts"] >= int(
        args.get("max_attempts", 3)
    ):
        return None
    history["attempts"] += 1
    history["last"] = remediation.value
    history["last_failure_code"] = failure_code
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


async def mark_auto_resolved(session: AsyncSession, *, incident_id: int, reason: str) -> None:
    """Resolve the incident because a remediation made the retry succeed (system actor).

    Idempotent: an incident already resolved or archived is left as it is.
    """
    incident = await session.get(Incident, incident_id)
    if incident is None or incident.status not in ACTIVE_STATUSES:
        return
    now = utcnow()
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
    "MAX_AUTO_ATTEMPTS",
    "describe_change",
    "mark_auto_resolved",
    "plan_retry",
    "record_auto_retry",
    "remediation_for",
]
