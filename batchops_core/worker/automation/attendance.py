"""Automation bodies of the Attendance domain: thin frames over its services, as the system
actor. Dates are the school's: `tz` (an IANA name, default UTC) decides what "today"
and "yesterday" mean, the same zone the schedule's cron line is written in.

Seeded schedules (migration 0006):
* `attendance_process`    `0 1 * * *`    recompute yesterday (idempotent)
* `attendance_absentees`  `30 9 * * 1-5` today's absentees, one mail per department
* `attendance_register`   `0 6 1 * *`    last month's register, CSV and PDF, under exports/
* punches sync            `*/10 * * * *` the Sources package's database source (target punches)
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from batchops_core.attendance import days, notify, register
from batchops_core.enums import RunStatus
from batchops_core.permissions import SYSTEM
from batchops_core.services.uploads import stored_name
from batchops_core.storage import open_store
from batchops_core.worker.automation.frame import AutomationFailed, AutomationRun, Outcome
from batchops_core.worker.automation.registry import ArgSpec, automation

_TZ = ArgSpec("tz", str, False, "the school's IANA time zone for 'today' (default UTC)")


def _outcome(message: str, rows: int | None = None, **data: Any) -> Outcome:
    return Outcome(status=RunStatus.SUCCEEDED, message=message, data=data, rows=rows)


def local_today(tz: str = "UTC") -> date:
    return datetime.now(ZoneInfo(tz)).date()


@automation(
    "Recompute the attendance register up to yesterday (idempotent).",
    ArgSpec("days_back", int, False, "how many days up to yesterday", minimum=1),
    _TZ,
)
async def attendance_process(run: AutomationRun, days_back: int = 1, tz: str = "UTC") -> Outcome:
    """Recompute the last `days_back` days up to yesterday (a late punch is picked up too)."""
    yesterday = local_today(tz) - timedelta(days=1)
    first = yesterday - timedelta(days=max(1, days_back) - 1)
    async with run.ctx.db.unit() as uow:
        result = await days.process_attendance(
            uow, actor=SYSTEM, date_from=first, date_to=yesterday
        )
    run.info(f"{first}..{yesterday}: {result.days} days, {result.changed} rows written")
    return _outcome(
        f"processed {result.days} days of {result.employees} employees ({first}..{yesterday}); "
        f"{result.inserted} new, {result.updated} changed, {result.deleted} removed.",
        rows=result.days,
        changed=result.changed,
    )


@automation(
    "Mail each department today's absentees (after processing today so far).",
    ArgSpec("send_mail", bool, False, "false: count only"),
    _TZ,
)
async def attendance_absentees(
    run: AutomationRun, send_mail: bool = True, tz: str = "UTC"
) -> Outcome:
    """Process today so far, then mail each department its absentees (no punch yet)."""
    today = local_today(tz)
    async with run.ctx.db.unit() as uow:
        await days.process_attendance(uow, actor=SYSTEM, date_from=today, date_to=today)
    async with run.ctx.db.unit() as uow:
        mails = await notify.absentee_mails(uow, actor=SYSTEM, day=today, missing=False)
    absent = sum(m.count for m in mails)
    if not send_mail:
        return _outcome(f"{absent} absent on {today}; no mail asked for.", rows=absent)
    results = await notify.deliver(run.ctx.settings, mails)
    for r in results:
        state = f"sent to {r.to}" if r.sent else r.problem
        run.info(f"{r.department or 'no department'}: {state}")
    sent = sum(r.sent for r in results)
    failed = [r for r in results if r.to and not r.sent]
    if failed:
        raise AutomationFailed(
            f"absentee mail to {failed[0].department} failed: {failed[0].problem}"
        )
    return _outcome(f"{absent} absent on {today}; {sent} department mails sent.", rows=absent)


@automation(
    "Write a month's attendance register (CSV and PDF) under exports/attendance/.",
    ArgSpec("month", str, False, "YYYY-MM (default: last month)"),
    ArgSpec("department", str, False, "one department (default: all)"),
    _TZ,
)
async def attendance_register(
    run: AutomationRun, month: str | None = None, department: str | None = None, tz: str = "UTC"
) -> Outcome:
    """The register of `month` (default: last month) as CSV and PDF, stored under the keys
    `attendance/register-<month>[-<department>].<csv|pdf>` (read from any host)."""
    last_month = local_today(tz).replace(day=1) - timedelta(days=1)
    when = register.parse_month(month) if month else last_month
    async with run.ctx.db.unit() as uow:
        reg = await register.month_register(uow, actor=SYSTEM, month=when, department=department)
    settings = run.ctx.settings
    folder = settings.scratch_path / "attendance" / str(run.run_id)
    stem = f"register-{reg.month:%Y-%m}" + (f"-{department}" if department else "")
    written = []
    for fmt in register.FORMATS:
        path = folder / stored_name(f"{stem}.{fmt}")
        await asyncio.to_thread(register.write_register, reg, path, fmt)
        stored = await open_store(settings).put_file(f"attendance/{path.name}", path, move=True)
        written.append(stored.key)
        run.info(f"stored {stored.key} ({stored.size:,} bytes)")
    return _outcome(
        f"register {reg.month:%Y-%m}: {len(reg.rows)} employees, CSV and PDF written.",
        rows=len(reg.rows),
        files=written,
    )
