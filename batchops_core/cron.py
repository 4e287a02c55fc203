"""Cron schedules: validation, next firing times, due computation, and exactly-once advancing.

Design decisions:

* Only classic 5-field cron lines (minute hour day-of-month month day-of-week). croniter also
  accepts a seconds field and `@daily`-style aliases; both are refused so that every schedule
  reads the same in the TUI, the CLI and the seeds.
* Firing times are computed in the schedule's **local wall time** with croniter on naive
  datetimes, then localized with zoneinfo. This sidesteps croniter's DST corner cases and gives
  cron's usual behaviour: a wall time skipped by a spring-forward gap fires once, right after the
  gap (02:30 becomes 03:30 local); a wall time repeated by a fall-back fires once, on its first
  occurrence. Times are returned as UTC-aware datetimes.
* The database is the scheduler's store. `due_jobs` reads enabled jobs whose `next_run_at` has
  passed; `advance_job` moves `next_run_at` to the first firing **after now** with a conditional
  `UPDATE … WHERE next_run_at = :fired_for`, so after downtime a missed firing runs once (not once
  per missed minute) and, of several daemons, only the one whose update matched may enqueue it.
  The arq job id from `firing_job_id` makes a second enqueue of the same firing a no-op as well.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterBadCronError, CroniterBadDateError, CroniterError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from batchops_core.enums import RunStatus
from batchops_core.errors import ValidationFailed
from batchops_core.models import Department, Job

log = logging.getLogger(__name__)

CRON_FIELDS: tuple[tuple[str, str], ...] = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-6 or SUN-SAT"),
)
MAX_PREVIEW = 50
_SCAN_LIMIT = 2_000
"""Candidate wall times examined per requested firing before giving up (DST gaps only)."""


# ---------------------------------------------------------------------------- cron and timezone


def zone(tz: str) -> ZoneInfo:
    """The IANA timezone named `tz`, or ValidationFailed."""
    name = (tz or "").strip()
    if not name:
        raise ValidationFailed("the timezone is empty; give an IANA name such as 'Europe/Paris'.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationFailed(
            f"'{tz}' is not a known timezone; give an IANA name such as 'UTC' or 'Asia/Kolkata'."
        ) from None


def _fields(cron: str) -> list[str]:
    fields = (cron or "").split()
    if not fields:
        raise ValidationFailed("the cron line is empty; give 5 fields, e.g. '0 6 * * 1-5'.")
    if len(fields) != 5:
        raise ValidationFailed(
            f"the cron line '{cron.strip()}' has {len(fields)} field(s); BatchOps needs exactly 5 "
            "(minute hour day-of-month month day-of-week), e.g. '0 6 * * 1-5'."
        )
    return fields


def validate_cron(cron: str, tz: str) -> None:
    """Raise ValidationFailed naming the bad field, the wrong field count, or the bad timezone."""
    fields = _fields(cron)
    for i, (name, allowed) in enumerate(CRON_FIELDS):
        probe = " ".join(value if j == i else "*" for j, value in enumerate(fields))
        if not croniter.is_valid(probe):
            raise ValidationFailed(
                f"the {name} field '{fields[i]}' of '{cron.strip()}' is not valid "
                f"(allowed: {allowed}, with '*', ',', '-' and '/')."
            )
    if not croniter.is_valid(" ".join(fields)):
        raise ValidationFailed(f"the cron line '{cron.strip()}' is not valid.")
    zone(tz)
    try:
        next_runs(cron, tz, datetime(2000, 1, 1, tzinfo=UTC), n=1)
    except ValidationFailed:
        raise
    except CroniterError:
        raise ValidationFailed(
            f"the cron line '{cron.strip()}' never fires (no such date, e.g. 31 February)."
        ) from None


def next_runs(cron: str, tz: str, after: datetime, n: int = 5) -> list[datetime]:
    """The next `n` firing times strictly after `after`, as UTC-aware datetimes."""
    if after.tzinfo is None:
        raise ValueError("next_runs needs a timezone-aware 'after'")
    fields = _fields(cron)
    local = zone(tz)
    n = max(0, min(n, MAX_PREVIEW))
    start = after.astimezone(local).replace(tzinfo=None)
    try:
        it = croniter(" ".join(fields), start)
    except (CroniterBadCronError, ValueError) as exc:
        raise ValidationFailed(f"the cron line '{cron.strip()}' is not valid ({exc}).") from None
    found: list[datetime] = []
    scanned = 0
    while len(found) < n:
        scanned += 1
        if scanned > _SCAN_LIMIT * max(n, 1):
            break
        try:
            wall: datetime = it.get_next(datetime)
        except CroniterBadDateError:
            raise ValidationFailed(
                f"the cron line '{cron.strip()}' never fires (no such date, e.g. 31 February)."
            ) from None
        # fold=0: a repeated (fall-back) wall time means its first occurrence; a skipped
        # (spring-forward) wall time maps to the instant just after the gap.
        instant = wall.replace(tzinfo=local, fold=0).astimezone(UTC)
        if instant <= after or (found and instant <= found[-1]):
            continue
        found.append(instant)
    return found


def next_run_after(cron: str, tz: str, after: datetime) -> datetime | None:
    runs = next_runs(cron, tz, after, n=1)
    return runs[0] if runs else None


def firing_job_id(job_id: int, scheduled_for: datetime, *, prefix: str = "batchops") -> str:
    """The deterministic arq job id of one firing: schedule id + firing time (UTC, seconds).

    `prefix` is the deployment's Redis prefix (`settings.redis.prefix`) so that deployments
    sharing one Redis never collide.
    """
    if scheduled_for.tzinfo is None:
        raise ValueError("firing_job_id needs a timezone-aware datetime")
    stamp = scheduled_for.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{prefix}:schedule:{job_id}:{stamp}"


# ---------------------------------------------------------------------------- task registry


@dataclass(frozen=True)
class ArgSpec:
    """One argument of a schedulable task."""

    name: str
    kind: type
    required: bool = True
    help: str = ""
    minimum: int | None = None


@dataclass(frozen=True)
class TaskSpec:
    name: str
    description: str
    args: tuple[ArgSpec, ...] = field(default_factory=tuple)


_KIND_WORDS: dict[type, str] = {str: "text", int: "a whole number", bool: "true or false"}


def _department(required: bool = True) -> ArgSpec:
    return ArgSpec("department", str, required, "an existing department name")


SCHEDULABLE_TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            "ingest_department",
            "Read a department's new records into an upload and run the pipeline.",
            (_department(),),
        ),
        TaskSpec("ingest_all_departments", "Ingest every active department."),
        TaskSpec(
            "send_attendance_reminders",
            "Email departments that have not submitted this period.",
            (ArgSpec("period", str, False, "the reminder period, e.g. 'week'"),),
        ),
        TaskSpec(
            "send_system_status_digest",
            "Email admins the day's runs, failures, open incidents and MTTR.",
        ),
        TaskSpec(
            "run_daily_backup",
            "Consistent database copy plus a manifest of stored files.",
            (ArgSpec("keep", int, False, "how many backups to keep", minimum=1),),
        ),
        TaskSpec(
            "purge_old_records",
            "Delete rows and files older than the retention.",
            (ArgSpec("days", int, False, "retention in days", minimum=1),),
        ),
        TaskSpec(
            "fetch_url",
            "Download a CSV from a URL into a new upload.",
            (
                ArgSpec("url", str, help="an http(s) URL of a CSV file"),
                ArgSpec("filename", str, False, "the stored file's name"),
                _department(required=False),
            ),
        ),
    )
}
INTERNAL_TASKS = frozenset({"process_upload", "retry_upload", "run_schedule"})
"""Tasks of the worker that a schedule may not name."""


def schedulable_task_names() -> list[str]:
    """Known schedulable tasks, plus any the worker registers beyond the internal ones."""
    names = set(SCHEDULABLE_TASKS)
    try:
        from batchops_core.tasks import TASKS

        names |= set(TASKS) - INTERNAL_TASKS
    except ImportError:  # the task registry is optional for validation
        pass
    return sorted(names)


async def validate_task(
    session: AsyncSession, task: str, arguments: dict[str, Any] | None
) -> dict[str, Any]:
    """Check the task name and its arguments; return the cleaned arguments."""
    names = schedulable_task_names()
    name = (task or "").strip()
    if name not in names:
        raise ValidationFailed(
            f"'{task}' is not a schedulable task; choose one of {', '.join(names)}."
        )
    if arguments is not None and not isinstance(arguments, dict):
        raise ValidationFailed(f"the arguments of {name} must be a JSON object.")
    args = dict(arguments or {})
    spec = SCHEDULABLE_TASKS.get(name)
    if spec is None:
        return args
    _check_arg_shape(spec, args)
    if "department" in args:
        args["department"] = await _existing_department(session, args["department"])
    if "url" in args:
        args["url"] = _http_url(args["url"])
    return args


def _check_arg_shape(spec: TaskSpec, args: dict[str, Any]) -> None:
    allowed = {a.name: a for a in spec.args}
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        expected = ", ".join(allowed) or "no arguments"
        raise ValidationFailed(
            f"{spec.name} does not take argument(s) {', '.join(unknown)} (it takes {expected})."
        )
    for arg in spec.args:
        if arg.name not in args:
            if arg.required:
                raise ValidationFailed(f"{spec.name} needs the argument '{arg.name}' ({arg.help}).")
            continue
        value = args[arg.name]
        wrong_bool = isinstance(value, bool) and arg.kind is not bool
        if not isinstance(value, arg.kind) or wrong_bool:
            raise ValidationFailed(
                f"the argument '{arg.name}' of {spec.name} must be "
                f"{_KIND_WORDS.get(arg.kind, arg.kind.__name__)} ({arg.help})."
            )
        if arg.minimum is not None and value < arg.minimum:
            raise ValidationFailed(
                f"the argument '{arg.name}' of {spec.name} must be at least {arg.minimum}."
            )


async def _existing_department(session: AsyncSession, wanted: str) -> str:
    name = wanted.strip()
    found = await session.scalar(
        select(Department.name).where(func.lower(Department.name) == name.lower())
    )
    if found is None:
        known = ", ".join(await session.scalars(select(Department.name).order_by(Department.name)))
        raise ValidationFailed(
            f"there is no department named '{name}'; known departments: {known or 'none'}."
        )
    return found


def _http_url(url: str) -> str:
    parsed = urlparse(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValidationFailed(f"'{url}' is not an http(s) URL.")
    return url.strip()


# ---------------------------------------------------------------------------- due and advance


@dataclass(frozen=True)
class DueFiring:
    """One schedule whose firing time has passed and which should be enqueued once."""

    job_id: int
    task: str
    arguments: dict[str, Any]
    scheduled_for: datetime
    lateness_seconds: float


async def due_jobs(session: AsyncSession, now: datetime, *, limit: int = 1_000) -> list[DueFiring]:
    """Enabled schedules whose `next_run_at` is at or before `now`, oldest first.

    One firing per schedule however long the daemon was down: the caller enqueues it and then
    calls `advance_job`, which skips every other missed firing.
    """
    rows = await session.execute(
        select(Job.id, Job.task, Job.arguments, Job.next_run_at)
        .where(Job.enabled.is_(True), Job.next_run_at.is_not(None), Job.next_run_at <= now)
        .order_by(Job.next_run_at, Job.id)
        .limit(limit)
    )
    return [
        DueFiring(
            job_id=job_id,
            task=task,
            arguments=dict(arguments or {}),
            scheduled_for=when,
            lateness_seconds=max(0.0, (now - when).total_seconds()),
        )
        for job_id, task, arguments, when in rows
    ]


async def advance_job(
    session: AsyncSession, *, job_id: int, fired_for: datetime, now: datetime
) -> bool:
    """Move `next_run_at` past `now`, only if it still equals `fired_for`.

    Returns True when this call advanced the schedule (the caller owns the firing), False when
    another daemon already did, or the schedule was edited or disabled in the meantime.
    """
    job = (
        await session.execute(select(Job.cron, Job.timezone).where(Job.id == job_id))
    ).one_or_none()
    if job is None:
        return False
    cron, tz = job
    after = max(now, fired_for)
    try:
        following = next_run_after(cron, tz, after)
    except ValidationFailed as exc:
        log.warning("schedule %s can no longer fire and stops: %s", job_id, exc)
        following = None  # a schedule that can no longer fire stops instead of looping
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.next_run_at == fired_for)
        .values(next_run_at=following)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def record_firing_result(
    session: AsyncSession, *, job_id: int, status: RunStatus, finished_at: datetime
) -> None:
    """Store the outcome of a schedule's latest run (`last_run_at`, `last_status`)."""
    await session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(last_run_at=finished_at, last_status=status)
        .execution_options(synchronize_session=False)
    )
