"""The bodies of the ingest, mail and fetch automation tasks (backup and purge live in
`maintenance.py`); `frame.run_automation` records each as a JobRun.

Files enter through the intake service like any upload (`services.uploads.record_upload`: name
and size checks, duplicate check, audit row, `upload.updated`). Every body is idempotent under
at-least-once delivery: an ingest advances the department's high-water mark in the same
transaction that creates the upload, so a re-run finds nothing new and records a skipped run; a
fetch of unchanged bytes is recorded as a duplicate and not processed again.
"""

from __future__ import annotations

import asyncio
import csv
import io
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from batchops_core.enums import IncidentStatus, ProcessMode, Role, RunStatus, UploadStatus
from batchops_core.errors import ValidationFailed
from batchops_core.infra.clock import utcnow
from batchops_core.infra.db import UnitOfWork
from batchops_core.infra.mail import send_mail
from batchops_core.models import (
    Department,
    DepartmentRecord,
    Incident,
    JobRun,
    User,
)
from batchops_core.permissions import SYSTEM
from batchops_core.pipeline.atomic import write_atomic
from batchops_core.services.uploads import (
    MANUAL,
    StagedFile,
    UploadInfo,
    check_plan,
    record_upload,
    stage_file,
    stored_name,
)
from batchops_core.worker.automation.frame import AutomationFailed, AutomationRun, Outcome
from batchops_core.worker.automation.registry import ArgSpec, automation, department_arg
from batchops_core.worker.retry import TransientError

INGEST_BATCH = 5_000


@automation("Do nothing but record a run: a probe of the whole dispatch path.")
async def noop(run: AutomationRun) -> Outcome:
    """Do nothing but record a run: a probe of the whole dispatch path (and the benchmark's)."""
    return Outcome(RunStatus.SUCCEEDED, "nothing to do")


# ------------------------------------------------------------------------------------ uploads


async def _stage_bytes(run: AutomationRun, filename: str, data: bytes) -> StagedFile:
    """Write generated or downloaded bytes to a scratch file and stage it like any intake."""
    scratch = run.ctx.settings.scratch_path / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    temp = scratch / f"{uuid.uuid4().hex}-{stored_name(filename)}"
    await asyncio.to_thread(write_atomic, temp, lambda tmp: tmp.write_bytes(data))
    try:
        return await stage_file(run.ctx.settings, temp, name=filename)
    finally:
        temp.unlink(missing_ok=True)


async def _record(
    uow: UnitOfWork, run: AutomationRun, staged: StagedFile, source: str
) -> UploadInfo:
    """The upload through the intake service, in the caller's unit (audit row, duplicate check,
    `upload.updated`, enqueue after the commit; without a dispatcher it waits, queued, for the
    next worker pass; if the unit rolls back, the staged object goes with it)."""
    return await record_upload(
        uow,
        actor=SYSTEM,
        staged=staged,
        source=source,
        plan=check_plan(ProcessMode.TRANSFORM, {}),
        dispatcher=run.ctx.dispatcher,
    )


# ------------------------------------------------------------------------------------ ingests


def _records_csv(rows: list[tuple[int, str, dict[str, Any]]]) -> bytes:
    columns: dict[str, None] = {"student_id": None}
    for _, _, payload in rows:
        for key in payload or {}:
            columns.setdefault(str(key), None)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for _, student_id, payload in rows:
        payload = payload or {}
        writer.writerow([student_id, *(payload.get(c, "") for c in list(columns)[1:])])
    return out.getvalue().encode("utf-8")


@automation(
    "Read a department's new records into an upload and run the pipeline.", department_arg()
)
async def ingest_department(run: AutomationRun, department: str) -> Outcome:
    """Read a department's records newer than its last ingest into an upload; enqueue it."""
    async with run.ctx.db.unit() as session:
        dept = await session.scalar(
            select(Department).where(func.lower(Department.name) == department.strip().lower())
        )
        if dept is None:
            raise AutomationFailed(f"there is no department named {department!r}.")
        rows: list[tuple[int, str, dict[str, Any]]] = []
        last = dept.last_ingested_record_id or 0
        while True:
            batch = (
                await session.execute(
                    select(
                        DepartmentRecord.id, DepartmentRecord.student_id, DepartmentRecord.payload
                    )
                    .where(DepartmentRecord.department_id == dept.id, DepartmentRecord.id > last)
                    .order_by(DepartmentRecord.id)
                    .limit(INGEST_BATCH)
                )
            ).all()
            rows.extend((r[0], r[1], r[2]) for r in batch)
            if len(batch) < INGEST_BATCH:
                break
            last = batch[-1][0]
        if not rows:
            run.info(f"{dept.name}: no new records since record {dept.last_ingested_record_id}")
            return Outcome(
                RunStatus.SKIPPED,
                f"{dept.name}: nothing new to ingest",
                {"department": dept.name, "records": 0},
            )
        data = await asyncio.to_thread(_records_csv, rows)
        stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
        slug = "".join(c if c.isalnum() else "-" for c in dept.name.lower()).strip("-")
        staged = await _stage_bytes(run, f"{slug}-ingest-{stamp}.csv", data)
        upload = await _record(session, run, staged, dept.name)
        upload_id = upload.id
        dept.last_ingested_record_id = rows[-1][0]
        dept.last_ingested_at = utcnow()
        name = dept.name
    run.info(f"{name}: {len(rows)} new records written to upload {upload_id}")
    return Outcome(
        RunStatus.SUCCEEDED,
        f"{name}: {len(rows)} records queued as upload {upload_id}",
        {"department": name, "records": len(rows), "upload_id": upload_id},
        rows=len(rows),
    )


@automation("Ingest every active department.")
async def ingest_all_departments(run: AutomationRun) -> Outcome:
    """Ingest every active department; succeeded when at least one had new records."""
    async with run.ctx.db.unit() as session:
        names = list(
            await session.scalars(
                select(Department.name).where(Department.active.is_(True)).order_by(Department.name)
            )
        )
    uploads: dict[str, int] = {}
    for name in names:
        outcome = await ingest_department(run, name)
        if outcome.status is RunStatus.SUCCEEDED:
            uploads[name] = int(outcome.data["upload_id"])
    if not uploads:
        return Outcome(
            RunStatus.SKIPPED, f"no new records in {len(names)} departments", {"uploads": {}}
        )
    return Outcome(
        RunStatus.SUCCEEDED,
        f"{len(uploads)} of {len(names)} departments had new records",
        {"uploads": uploads},
    )


# ------------------------------------------------------------------------------------ mail


def _require_smtp(run: AutomationRun) -> None:
    if not run.ctx.settings.smtp.host:
        raise AutomationFailed("mail is not configured: set [smtp] host in config.toml.")


def _period_start(now: datetime, tz: str, period: str) -> datetime:
    local = now.astimezone(ZoneInfo(tz))
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start = day
    elif period == "week":
        start = day - timedelta(days=day.weekday())
    elif period == "month":
        start = day.replace(day=1)
    else:
        raise AutomationFailed(f"period must be day, week or month, not {period!r}.")
    return start.astimezone(ZoneInfo("UTC"))


@automation(
    "Email departments that have not submitted this period.",
    ArgSpec("period", str, False, "the reminder period, e.g. 'week'"),
)
async def send_attendance_reminders(run: AutomationRun, period: str = "week") -> Outcome:
    """Email the members of every active department that has not submitted this period."""
    _require_smtp(run)
    settings = run.ctx.settings
    since = _period_start(utcnow(), settings.timezone, period)
    async with run.ctx.db.unit() as session:
        late = (
            await session.scalars(
                select(Department)
                .where(
                    Department.active.is_(True),
                    (Department.last_submitted_at.is_(None))
                    | (Department.last_submitted_at < since),
                )
                .order_by(Department.name)
            )
        ).all()
        recipients: dict[str, list[str]] = {}
        for dept in late:
            members = await session.scalars(
                select(User.email).where(User.department_id == dept.id, User.active.is_(True))
            )
            emails = [e for e in members if e]
            if dept.contact_email:
                emails.append(dept.contact_email)
            recipients[dept.name] = sorted(set(emails))
    sent: list[str] = []
    for name, emails in recipients.items():
        if not emails:
            run.info(f"{name}: late, but nobody to remind")
            continue
        await send_mail(
            settings,
            to=emails,
            subject=f"Reminder: {name} has not submitted this {period}",
            text=(
                f"Hello,\n\nBatchOps has received no submission from {name} since "
                f"{since:%Y-%m-%d %H:%M} UTC. Please upload this {period}'s file.\n"
            ),
        )
        run.info(f"{name}: reminded {', '.join(emails)}")
        sent.append(name)
    if not sent:
        return Outcome(RunStatus.SKIPPED, "every department has submitted", {"reminded": []})
    return Outcome(RunStatus.SUCCEEDED, f"reminded {len(sent)} department(s)", {"reminded": sent})


async def _digest_figures(session: UnitOfWork, since: datetime) -> dict[str, Any]:
    by_status = dict(
        (
            await session.execute(
                select(JobRun.status, func.count(JobRun.id))
                .where(JobRun.created_at >= since)
                .group_by(JobRun.status)
            )
        ).all()
    )
    failures = (
        await session.execute(
            select(JobRun.id, JobRun.task, JobRun.error_code, JobRun.error_message)
            .where(JobRun.created_at >= since, JobRun.status == RunStatus.FAILED)
            .order_by(JobRun.id.desc())
            .limit(20)
        )
    ).all()
    open_incidents = await session.scalar(
        select(func.count(Incident.id)).where(
            Incident.status.in_([IncidentStatus.OPEN, IncidentStatus.IN_PROGRESS])
        )
    )
    resolved = (
        await session.execute(
            select(Incident.created_at, Incident.resolved_at).where(
                Incident.resolved_at.is_not(None),
                Incident.resolved_at >= since - timedelta(days=29),
            )
        )
    ).all()
    mttr = (
        sum((r - c).total_seconds() for c, r in resolved) / len(resolved) / 60 if resolved else None
    )
    return {
        "runs": {str(k): int(v) for k, v in by_status.items()},
        "failures": [
            {"run": i, "task": t, "code": c or "", "message": (m or "")[:200]}
            for i, t, c, m in failures
        ],
        "open_incidents": int(open_incidents or 0),
        "mttr_minutes": round(mttr, 1) if mttr is not None else None,
    }


@automation("Email admins the day's runs, failures, open incidents and MTTR.")
async def send_system_status_digest(run: AutomationRun) -> Outcome:
    """Email admins today's runs by status, failures, open incidents and the 30-day MTTR."""
    _require_smtp(run)
    settings = run.ctx.settings
    since = _period_start(utcnow(), settings.timezone, "day")
    async with run.ctx.db.unit() as session:
        figures = await _digest_figures(session, since)
        admins = [
            e
            for e in await session.scalars(
                select(User.email).where(User.role == Role.ADMIN, User.active.is_(True))
            )
            if e
        ]
    if not admins:
        return Outcome(RunStatus.SKIPPED, "no active admin to send the digest to", figures)
    runs = ", ".join(f"{k} {v}" for k, v in sorted(figures["runs"].items())) or "none"
    mttr = figures["mttr_minutes"]
    lines = [
        f"BatchOps status since {since:%Y-%m-%d %H:%M} UTC",
        "",
        f"Runs: {runs}",
        f"Open incidents: {figures['open_incidents']}",
        f"MTTR (30 days): {f'{mttr} min' if mttr is not None else 'no resolved incidents'}",
        "",
        "Failures:" if figures["failures"] else "No failures.",
        *(f"  run {f['run']} {f['task']}: {f['code']} {f['message']}" for f in figures["failures"]),
    ]
    await send_mail(
        settings,
        to=sorted(set(admins)),
        subject="Daily status digest",
        text="\n".join(lines) + "\n",
    )
    run.info(f"digest sent to {len(set(admins))} admin(s)")
    return Outcome(RunStatus.SUCCEEDED, f"digest sent to {len(set(admins))} admin(s)", figures)


# ------------------------------------------------------------------------------------ fetch


def _download(url: str, limit: int, timeout: float) -> tuple[bytes, str]:
    request = urllib.request.Request(url, headers={"User-Agent": "BatchOps fetch_url"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            data = response.read(limit + 1)
            name = Path(urlparse(response.geturl()).path).name
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code == 429:
            raise TransientError(f"{url} answered HTTP {exc.code}; will try again.") from None
        raise AutomationFailed(f"{url} answered HTTP {exc.code} {exc.reason}.") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TransientError(f"cannot fetch {url}: {reason}.") from None
    if len(data) > limit:
        raise AutomationFailed(f"{url} is larger than the {limit // 2**20} MB upload limit.")
    return data, name


@automation(
    "Download a CSV from a URL into a new upload.",
    ArgSpec("url", str, help="an http(s) URL of a CSV file"),
    ArgSpec("filename", str, False, "the stored file's name"),
    department_arg(required=False),
)
async def fetch_url(
    run: AutomationRun, url: str, filename: str | None = None, department: str | None = None
) -> Outcome:
    """Download a CSV from `url` into a new upload and enqueue it through the pipeline."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise AutomationFailed(f"{url!r} is not an http(s) URL.")
    settings = run.ctx.settings
    limit = settings.pipeline.max_upload_mb * 2**20
    data, served_name = await asyncio.to_thread(_download, url, limit, 60.0)
    if not data:
        raise AutomationFailed(f"{url} returned an empty file.")
    name = Path(filename or served_name or "download.csv").name or "download.csv"
    staged = await _stage_bytes(run, name, data)
    try:
        async with run.ctx.db.unit() as session:
            upload = await _record(session, run, staged, department or MANUAL)
    except ValidationFailed as exc:
        raise AutomationFailed(str(exc)) from None
    if upload.status is UploadStatus.DUPLICATE:
        run.info(f"{url} is unchanged since upload {upload.duplicate_of_id}; not processed again")
        return Outcome(
            RunStatus.SKIPPED,
            f"{url} unchanged since upload {upload.duplicate_of_id}",
            {"upload_id": upload.id, "duplicate_of": upload.duplicate_of_id, "bytes": len(data)},
        )
    run.info(f"fetched {len(data)} bytes from {url} into upload {upload.id}")
    return Outcome(
        RunStatus.SUCCEEDED,
        f"fetched {url} as upload {upload.id}",
        {"upload_id": upload.id, "bytes": len(data)},
    )
