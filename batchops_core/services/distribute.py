"""Send a published report to its department's staff by mail, with the CSV and/or PDF attached.

Recipients by default: the department's contact email plus its subscribers — the active users
whose department it is and whose address is verified (`batchops user set-department`). An
operator may name addresses instead. Needs `SEND_REPORTS` (staff); every sending writes an
audit row naming the recipients. Attachments over `MAX_ATTACHMENT_MB` in total are refused
before anything is sent (most mail servers reject such messages anyway): the sentence says to
share the export instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from batchops_core import audit
from batchops_core.errors import ValidationFailed
from batchops_core.infra.db import Database, UnitOfWork
from batchops_core.infra.mail import check_configured, send_mail
from batchops_core.models import Department, Upload, User
from batchops_core.permissions import Action, Actor, require
from batchops_core.services.reports import ReportFormat, get_report, report_file

MAX_ATTACHMENT_MB = 20


@dataclass(frozen=True)
class Sent:
    upload_id: int
    recipients: list[str]
    attachments: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "upload_id": self.upload_id,
            "recipients": list(self.recipients),
            "attachments": list(self.attachments),
        }


async def report_recipients(uow: UnitOfWork, *, actor: Actor, upload_id: int) -> list[str]:
    """The department contact and subscribers of a report's upload (may be empty)."""
    require(actor, Action.SEND_REPORTS)
    department_id = await uow.scalar(select(Upload.department_id).where(Upload.id == upload_id))
    if department_id is None:
        return []
    contact = await uow.scalar(
        select(Department.contact_email).where(Department.id == department_id)
    )
    staff = await uow.scalars(
        select(User.email)
        .where(
            User.department_id == department_id,
            User.active.is_(True),
            User.email_verified.is_(True),
        )
        .order_by(User.username)
    )
    found = [contact or "", *staff]
    return list(dict.fromkeys(a.strip().lower() for a in found if a and a.strip()))


def _addresses(given: Sequence[str]) -> list[str]:
    from batchops_core.accounts import check_email

    out: list[str] = []
    for item in given:
        for part in str(item).replace(";", ",").split(","):
            if part.strip():
                out.append(check_email(part).lower())
    return list(dict.fromkeys(out))


async def send_report(
    db: Database,
    *,
    actor: Actor,
    upload_id: int,
    to: Sequence[str] = (),
    formats: Sequence[ReportFormat | str] = (ReportFormat.CSV, ReportFormat.PDF),
) -> Sent:
    """Mail the report's files to `to` (default: the department's contact and subscribers)."""
    require(actor, Action.SEND_REPORTS)
    check_configured(db.settings)
    chosen = [ReportFormat(str(f).lower()) for f in formats] or [ReportFormat.CSV]
    async with db.unit() as uow:
        detail = await get_report(uow, actor=actor, upload_id=upload_id)
        recipients = (
            _addresses(to) if to else await report_recipients(uow, actor=actor, upload_id=upload_id)
        )
    if not recipients:
        department = detail.row.department or "this upload"
        raise ValidationFailed(
            f"{department} has no contact email and no subscribed staff; name addresses, or set "
            "the department's contact (batchops department edit NAME --contact-email ADDRESS)."
        )
    paths = [await report_file(db.settings, detail, fmt) for fmt in dict.fromkeys(chosen)]
    total = sum(p.stat().st_size for p in paths)
    if total > MAX_ATTACHMENT_MB * 1024 * 1024:
        raise ValidationFailed(
            f"the report files are {total / 1024**2:,.1f} MB, over the {MAX_ATTACHMENT_MB} MB a "
            "mail may carry; export them (batchops reports export) and share the files instead."
        )
    files = [(p.name, await asyncio.to_thread(p.read_bytes)) for p in paths]
    row = detail.row
    rows = f"{row.rows_out:,} rows" if row.rows_out is not None else "rows"
    quarantined = (
        f", {row.rows_quarantined:,} quarantined (see the fix-list in BatchOps)"
        if row.rows_quarantined
        else ""
    )
    text = (
        f"The report for {row.filename} ({row.department or 'manual upload'}) is attached: "
        f"{rows}{quarantined}.\n\nSent by {actor.username} from BatchOps, upload #{row.upload_id}."
    )
    await send_mail(
        db.settings,
        to=recipients,
        subject=f"Report: {row.filename}",
        text=text,
        attachments=files,
    )
    async with db.unit() as uow:
        audit.record(
            uow,
            actor=actor,
            action="report.send",
            target_type="upload",
            target_id=row.upload_id,
            target_name=row.filename,
            detail=f"to {', '.join(recipients)}: {', '.join(name for name, _ in files)}",
        )
    return Sent(row.upload_id, recipients, [name for name, _ in files])
