"""`batchops audit`: read the audit trail, newest first, with filters and paging."""

from __future__ import annotations

import argparse
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from batchops_core.audit import list_audit
from batchops_core.errors import ValidationFailed
from batchops_core.infra.clock import utcnow
from batchops_tui.cli.common import EXIT_OK, Cli, shell_operator, table

_AGE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def register(sub: argparse._SubParsersAction) -> None:
    command = sub.add_parser("audit", help="read the audit log (admins)")
    command.add_argument("--action", help="an action, or a prefix such as 'user' or 'auth'")
    command.add_argument("--user", help="only what this user did")
    command.add_argument("--target", help="only what was done to this user or object")
    command.add_argument(
        "--since",
        metavar="DATE",
        help="a date (2026-11-20), a time (2026-11-20T08:00) or an age (12h, 7d)",
    )
    command.add_argument("--limit", type=int, default=50, metavar="N", help="rows (1-1000)")
    command.add_argument("--offset", type=int, default=0, metavar="N", help="rows to skip")
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command.set_defaults(handler=audit_command)


def parse_since(text: str, timezone: str, now: datetime | None = None) -> datetime:
    """An absolute date/time (in the configured timezone unless it names one) or an age."""
    value = text.strip().lower()
    age = _AGE.match(value)
    if age:
        return (now or utcnow()) - timedelta(**{_UNITS[age.group(2)]: int(age.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(
            f"--since '{text}' is not a date (2026-11-20), a time (2026-11-20T08:00) or an age "
            "(12h, 7d)."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment


async def audit_command(args: argparse.Namespace, cli: Cli) -> int:
    if not 1 <= args.limit <= 1000:
        raise ValidationFailed("--limit must be between 1 and 1000.")
    if args.offset < 0:
        raise ValidationFailed("--offset must not be negative.")
    since = parse_since(args.since, cli.settings.timezone) if args.since else None
    db = await cli.database()
    async with db.unit() as session:
        page = await list_audit(
            session,
            actor=shell_operator(),
            action=args.action,
            actor_name=args.user,
            target=args.target,
            since=since,
            offset=args.offset,
            limit=args.limit,
        )
    if args.json:
        cli.print_json(
            {
                "total": page.total,
                "offset": page.offset,
                "limit": page.limit,
                "items": [vars(row) for row in page.items],
            }
        )
        return EXIT_OK
    if not page.items:
        cli.print("no audit entries match." if page.total == 0 else "no entries on this page.")
        return EXIT_OK
    zone = ZoneInfo(cli.settings.timezone)
    rows = [
        [
            row.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            row.actor_name,
            row.action,
            row.target_name,
            row.detail,
            row.client_addr or "",
        ]
        for row in page.items
    ]
    cli.print(table(rows, ["TIME", "ACTOR", "ACTION", "TARGET", "DETAIL", "FROM"]))
    last = page.offset + len(page.items)
    more = f"; next page: --offset {last}" if page.has_next else ""
    cli.print(f"entries {page.offset + 1}-{last} of {page.total} ({cli.settings.timezone}){more}.")
    return EXIT_OK
