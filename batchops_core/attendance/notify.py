"""Absentee mails: one per department, to the contact of the department of the same name.

Employees' departments are free text; the mail goes to the `Department` (the feeds table) whose
name matches case-insensitively and has a contact address. Departments without one are reported
back, not mailed. Building the mails is a service; sending is `deliver`, after the unit commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select

from batchops_core import audit
from batchops_core.attendance.days import absentees
from batchops_core.attendance.views import DayInfo
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import UnitOfWork
from batchops_core.models import Department
from batchops_core.permissions import Action, Actor, require


@dataclass(frozen=True)
class AbsenteeMail:
    department: str
    to: str
    """'' when the department has no contact address (then nothing is sent)."""
    subject: str
    text: str
    count: int


@dataclass(frozen=True)
class Delivery:
    department: str
    to: str
    sent: bool
    problem: str = ""


def _text(department: str, day: date, rows: list[DayInfo]) -> str:
    lines = [f"Absent or missing a punch on {day:%A %d %B %Y} in {department or 'no department'}:"]
    lines += [
        f"  {r.employee:<10} {r.name:<30} {'absent' if r.status == 'A' else 'missing punch'}"
        for r in rows
    ]
    lines.append("")
    lines.append("Missing punches can be fixed with a manual punch for approval.")
    return "\n".join(lines)


async def absentee_mails(
    uow: UnitOfWork, *, actor: Actor, day: str | date | None = None, missing: bool = True
) -> list[AbsenteeMail]:
    """The mails to send for one date's absentees (default yesterday), one per department."""
    require(actor, Action.CORRECT_ATTENDANCE)
    when = date.fromisoformat(str(day)) if day else utcnow().date() - timedelta(days=1)
    rows = await absentees(uow, actor=actor, day=when, missing=missing)
    contacts = {
        name.lower(): email
        for name, email in await uow.execute(select(Department.name, Department.contact_email))
    }
    by_dept: dict[str, list[DayInfo]] = {}
    for row in rows:
        by_dept.setdefault(row.department, []).append(row)
    mails = [
        AbsenteeMail(
            department=dept,
            to=contacts.get(dept.lower(), "") or "",
            subject=f"Absentees {when:%Y-%m-%d}: {dept or 'no department'} ({len(items)})",
            text=_text(dept, when, items),
            count=len(items),
        )
        for dept, items in sorted(by_dept.items())
    ]
    audit.record(
        uow,
        actor=actor,
        action="attendance.absentees",
        target_type="attendance",
        target_name=str(when),
        detail=", ".join(f"{m.department or '-'}: {m.count}" for m in mails) or "none absent",
    )
    return mails


async def deliver(settings: Settings, mails: list[AbsenteeMail]) -> list[Delivery]:
    """Send each mail that has an address; a failure is reported per department, not raised."""
    from batchops_core.infra.mail import MailError, send_mail

    results: list[Delivery] = []
    for mail in mails:
        if not mail.to:
            results.append(Delivery(mail.department, "", False, "the department has no contact"))
            continue
        try:
            await send_mail(settings, to=[mail.to], subject=mail.subject, text=mail.text)
        except MailError as exc:
            results.append(Delivery(mail.department, mail.to, False, str(exc)))
        else:
            results.append(Delivery(mail.department, mail.to, True))
    return results
