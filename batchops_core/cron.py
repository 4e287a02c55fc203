"""Cron arithmetic: validating a line and a timezone, and the next firing times.

Pure functions with no database and no worker, so the schedule form can call them on every
keystroke and the scheduler (`worker/scheduler.py`) can rely on them.

Design decisions:

* Only classic 5-field cron lines (minute hour day-of-month month day-of-week). croniter also
  accepts a seconds field and `@daily`-style aliases; both are refused so that every schedule
  reads the same in the TUI, the CLI and the seeds.
* Firing times are computed in the schedule's **local wall time** with croniter on naive
  datetimes, then localized with zoneinfo. This sidesteps croniter's DST corner cases and gives
  cron's usual behaviour: a wall time skipped by a spring-forward gap fires once, right after the
  gap (02:30 becomes 03:30 local); a wall time repeated by a fall-back fires once, on its first
  occurrence. Times are returned as UTC-aware datetimes.
* `firing_job_id` names one firing of one schedule: the arq job id that makes a second enqueue
  of the same firing a no-op.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterBadCronError, CroniterBadDateError, CroniterError

from batchops_core.errors import ValidationFailed

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
