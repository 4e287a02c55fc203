"""`batchops schedule list|add|edit|enable|disable|delete|run-now|next` for scripts.

Who is acting: without `--as`, the shell operator (an admin named after the OS login, like every
`batchops` command); with `--as USER` (or `BATCHOPS_USER`) and the password from
`--password-stdin` or `BATCHOPS_PASSWORD`, that account, signed in like the TUI (audit row,
lockout) and held to its role: `add`, `edit`, `enable` and `disable` need an admin. The core
services enforce the same rules whatever the caller.

Exit status: 0 success, 1 refused or failed (one line on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from batchops_core.cron import next_runs, validate_cron
from batchops_core.errors import ValidationFailed
from batchops_core.infra.clock import utcnow
from batchops_core.services.schedules import (
    ScheduleRow,
    create_schedule,
    find_schedule,
    list_schedules,
    run_now,
    set_schedule_enabled,
    update_schedule,
)
from batchops_core.worker.dispatcher import Dispatcher
from batchops_tui.cli.common import EXIT_OK, EXIT_USAGE, Cli, signed_in_actor, table


def register(sub: argparse._SubParsersAction) -> None:
    identity = argparse.ArgumentParser(add_help=False)
    identity.add_argument(
        "--as",
        dest="as_user",
        metavar="USER",
        default=os.environ.get("BATCHOPS_USER"),
        help="act as this account (default: $BATCHOPS_USER)",
    )
    identity.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin (default: $BATCHOPS_PASSWORD)",
    )
    group = sub.add_parser(
        "schedule", aliases=["schedules"], help="list, create, edit and run cron schedules"
    )
    commands = group.add_subparsers(title="schedule commands", metavar="COMMAND")
    group.set_defaults(handler=_usage(group))

    listing = commands.add_parser("list", parents=[identity], help="all schedules")
    listing.add_argument("--search", help="only schedules whose name, task or text match")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=list_command)

    add = commands.add_parser("add", parents=[identity], help="create a schedule (admins)")
    add.add_argument("name")
    add.add_argument("--task", required=True, help="e.g. ingest_department, run_daily_backup")
    add.add_argument("--cron", required=True, help="5 fields, e.g. '0 6 * * 1-5'")
    add.add_argument("--tz", default="UTC", help="IANA timezone (default UTC)")
    _argument_options(add)
    add.add_argument("--description", default="")
    add.add_argument("--disabled", action="store_true", help="create it disabled")
    add.set_defaults(handler=add_command)

    edit = commands.add_parser("edit", parents=[identity], help="change a schedule (admins)")
    edit.add_argument("schedule", help="id or name")
    edit.add_argument("--name")
    edit.add_argument("--task")
    edit.add_argument("--cron")
    edit.add_argument("--tz")
    _argument_options(edit)
    edit.add_argument("--description")
    edit.set_defaults(handler=edit_command)

    for verb, enabled in (("enable", True), ("disable", False)):
        toggle = commands.add_parser(verb, parents=[identity], help=f"{verb} a schedule (admins)")
        toggle.add_argument("schedule", help="id or name")
        toggle.set_defaults(handler=toggle_command, enabled=enabled)

    delete = commands.add_parser(
        "delete", parents=[identity], help="delete a schedule; its runs stay (admins)"
    )
    delete.add_argument("schedule", help="id or name")
    delete.set_defaults(handler=delete_command)

    fire = commands.add_parser("run-now", parents=[identity], help="fire a schedule once now")
    fire.add_argument("schedule", help="id or name")
    fire.set_defaults(handler=run_now_command)

    upcoming = commands.add_parser(
        "next", parents=[identity], help="the next firing times of a schedule or a cron line"
    )
    upcoming.add_argument("schedule", nargs="?", help="id or name")
    upcoming.add_argument("--cron", help="preview a cron line instead of a stored schedule")
    upcoming.add_argument("--tz", default="UTC", help="timezone of --cron (default UTC)")
    upcoming.add_argument("-n", type=int, default=5, help="how many (default 5)")
    upcoming.set_defaults(handler=next_command)


def _usage(parser: argparse.ArgumentParser) -> Any:
    async def show(args: argparse.Namespace, cli: Cli) -> int:
        parser.print_usage(sys.stderr)
        cli.error(
            "choose a schedule command: list, add, edit, enable, disable, delete, run-now, next."
        )
        return EXIT_USAGE

    return show


def _argument_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a task argument (repeatable), e.g. --arg department=Fees",
    )
    parser.add_argument("--args", dest="args_json", help="all task arguments as a JSON object")


def _task_arguments(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.args_json is None and not args.arg:
        return None
    values: dict[str, Any] = {}
    if args.args_json is not None:
        try:
            values = json.loads(args.args_json)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(f"--args is not valid JSON ({exc.msg}).") from None
        if not isinstance(values, dict):
            raise ValidationFailed('--args must be a JSON object, e.g. \'{"department": "Fees"}\'.')
    for item in args.arg:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValidationFailed(f"--arg '{item}' must look like KEY=VALUE.")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        values[key.strip()] = value if not isinstance(value, (dict, list)) else raw
    return values


def _when(value: datetime | None, tz: str = "UTC") -> str:
    if value is None:
        return "-"
    local = value.astimezone(ZoneInfo(tz))
    return local.strftime("%Y-%m-%d %H:%M %Z")


def _as_dict(row: ScheduleRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "task": row.task,
        "arguments": row.arguments,
        "cron": row.cron,
        "timezone": row.timezone,
        "enabled": row.enabled,
        "next_run_at": row.next_run_at.isoformat() if row.next_run_at else None,
        "last_run_at": row.last_run_at.isoformat() if row.last_run_at else None,
        "last_status": row.last_status.value if row.last_status else None,
        "description": row.description,
        "owner": row.owner,
    }


def _show(cli: Cli, verb: str, row: ScheduleRow) -> None:
    state = "enabled" if row.enabled else "disabled"
    cli.print(
        f"schedule #{row.id} '{row.name}' {verb}: {row.task} '{row.cron}' {row.timezone}, "
        f"{state}, next run {_when(row.next_run_at, row.timezone)}."
    )


async def list_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
    db = await cli.database()
    rows: list[ScheduleRow] = []
    async with db.unit() as session:
        offset = 0
        while True:
            page = await list_schedules(
                session, actor=actor, offset=offset, limit=500, search=args.search
            )
            rows += page.items
            if not page.has_next:
                break
            offset += len(page.items)
    if args.json:
        cli.print_json([_as_dict(r) for r in rows])
        return EXIT_OK
    if not rows:
        cli.print("no schedules.")
        return EXIT_OK
    body = [
        [
            str(r.id),
            r.name,
            r.task,
            r.cron,
            r.timezone,
            "yes" if r.enabled else "no",
            _when(r.next_run_at),
            _when(r.last_run_at),
            r.last_status.value if r.last_status else "-",
        ]
        for r in rows
    ]
    headers = ["ID", "NAME", "TASK", "CRON", "TZ", "ON", "NEXT RUN", "LAST RUN", "LAST"]
    cli.print(table(body, headers))
    return EXIT_OK


async def add_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
    arguments = _task_arguments(args)
    db = await cli.database()
    async with db.unit() as session:
        row = await create_schedule(
            session,
            actor=actor,
            name=args.name,
            task=args.task,
            cron=args.cron,
            timezone=args.tz,
            arguments=arguments,
            description=args.description,
            enabled=not args.disabled,
        )
    _show(cli, "created", row)
    return EXIT_OK


async def edit_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
    changes: dict[str, Any] = {
        key: value
        for key, value in (
            ("name", args.name),
            ("task", args.task),
            ("cron", args.cron),
            ("timezone", args.tz),
            ("description", args.description),
        )
        if value is not None
    }
    arguments = _task_arguments(args)
    if arguments is not None:
        changes["arguments"] = arguments
    if not changes:
        cli.error(
            "nothing to change: give --name, --task, --cron, --tz, --arg/--args or --description."
        )
        return EXIT_USAGE
    db = await cli.database()
    async with db.unit() as session:
        found = await find_schedule(session, actor=actor, ref=args.schedule)
        row = await update_schedule(session, actor=actor, job_id=found.id, **changes)
    _show(cli, "updated", row)
    return EXIT_OK


async def toggle_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
    db = await cli.database()
    async with db.unit() as session:
        found = await find_schedule(session, actor=actor, ref=args.schedule)
        row = await set_schedule_enabled(
            session, actor=actor, job_id=found.id, enabled=args.enabled
        )
    _show(cli, "enabled" if args.enabled else "disabled", row)
    return EXIT_OK


async def delete_command(args: argparse.Namespace, cli: Cli) -> int:
    from batchops_core.services.actions import delete_schedule

    actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
    db = await cli.database()
    async with db.unit() as session:
        name = await delete_schedule(session, actor=actor, ref=args.schedule)
    cli.print(f"schedule '{name}' deleted; its past runs are kept.")
    return EXIT_OK


async def run_now_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
    db = await cli.database()
    async with db.unit() as session:
        found = await find_schedule(session, actor=actor, ref=args.schedule)
    dispatcher = await Dispatcher.connect(db, cli.settings)
    try:
        arq_id = await run_now(db, dispatcher, actor=actor, job_id=found.id)
        if dispatcher.embedded:
            cli.print(f"running schedule #{found.id} '{found.name}' in this process ...")
            await dispatcher.wait_idle()
            async with db.unit() as session:
                after = await find_schedule(session, actor=actor, ref=str(found.id))
            status = after.last_status.value if after.last_status else "unknown"
            cli.print(f"schedule #{found.id} '{found.name}' finished: {status}.")
            return EXIT_OK if status in ("succeeded", "skipped") else 1
    finally:
        await dispatcher.close()
    cli.print(f"schedule #{found.id} '{found.name}' queued as {arq_id}.")
    return EXIT_OK


async def next_command(args: argparse.Namespace, cli: Cli) -> int:
    if bool(args.schedule) == bool(args.cron):
        cli.error("give either a schedule (id or name) or --cron '<5 fields>'.")
        return EXIT_USAGE
    if args.cron:
        cron, tz, label = args.cron, args.tz, f"'{args.cron}' {args.tz}"
    else:
        actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
        db = await cli.database()
        async with db.unit() as session:
            row = await find_schedule(session, actor=actor, ref=args.schedule)
        cron, tz = row.cron, row.timezone
        label = f"#{row.id} '{row.name}' ('{row.cron}' {row.timezone})"
    validate_cron(cron, tz)
    runs = next_runs(cron, tz, utcnow(), n=max(1, min(args.n, 50)))
    cli.print(f"next {len(runs)} firing(s) of {label}:")
    for when in runs:
        cli.print(f"  {_when(when, tz)}   ({when:%Y-%m-%d %H:%M} UTC)")
    return EXIT_OK
