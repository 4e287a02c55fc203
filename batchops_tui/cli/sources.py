"""`batchops source …`, `batchops missing` and `batchops records query`.

Who is acting follows every command group: without `--as`, the shell operator (an admin named
after the OS login); with `--as USER`, that account signed in and held to its role. Adding,
editing and removing sources need an admin; syncing needs a moderator or admin.

Exit status: 0 success, 1 refused or failed (one line on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from typing import Any

from batchops_core.errors import ValidationFailed
from batchops_core.sources.config import parse_config_text
from batchops_core.sources.service import (
    SourceInfo,
    add_source,
    edit_source,
    get_source,
    list_jobs,
    list_sources,
    remove_source,
    set_source_enabled,
)
from batchops_tui.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Cli, signed_in_actor, table


def _identity() -> argparse.ArgumentParser:
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
        help="read the account password from the first line of stdin (default: $BATCHOPS_PASSWORD)",
    )
    return identity


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-12-03") from None


def register(sub: argparse._SubParsersAction) -> None:
    identity = _identity()
    group = sub.add_parser("source", aliases=["sources"], help="external data sources")
    commands = group.add_subparsers(title="source commands", metavar="COMMAND")
    group.set_defaults(
        handler=_usage(group, "list, show, add, edit, enable, disable, remove, test, sync")
    )

    listing = commands.add_parser("list", parents=[identity], help="all sources")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=list_command)

    show = commands.add_parser("show", parents=[identity], help="one source and its recent jobs")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=show_command)

    add = commands.add_parser("add", parents=[identity], help="add a source (admins)")
    add.add_argument("name")
    add.add_argument("--kind", required=True, choices=["database", "http", "folder"])
    add.add_argument("--department", required=True)
    add.add_argument(
        "--config", dest="source_config", default="{}", help="JSON, or @FILE holding JSON"
    )
    add.add_argument(
        "--secret-stdin",
        action="store_true",
        help="read the external database password from stdin and store it encrypted",
    )
    add.add_argument("--json", action="store_true")
    add.set_defaults(handler=add_command)

    edit = commands.add_parser("edit", parents=[identity], help="change a source (admins)")
    edit.add_argument("name")
    edit.add_argument("--config", dest="source_config", help="the whole new config: JSON, or @FILE")
    edit.add_argument("--department")
    edit.add_argument("--secret-stdin", action="store_true")
    edit.add_argument("--json", action="store_true")
    edit.set_defaults(handler=edit_command)

    for verb, enabled in (("enable", True), ("disable", False)):
        toggle = commands.add_parser(verb, parents=[identity], help=f"{verb} a source (admins)")
        toggle.add_argument("name")
        toggle.set_defaults(handler=toggle_command, enabled=enabled)

    remove = commands.add_parser(
        "remove", parents=[identity], help="delete a source with its jobs and records (admins)"
    )
    remove.add_argument("name")
    remove.set_defaults(handler=remove_command)

    test = commands.add_parser(
        "test", parents=[identity], help="connect, list or parse a sample; writes nothing"
    )
    test.add_argument("name")
    test.add_argument("file", nargs="?", help="a sample file to parse with the source's settings")
    test.add_argument("--json", action="store_true")
    test.set_defaults(handler=test_command)

    sync = commands.add_parser("sync", parents=[identity], help="sync a source now")
    sync.add_argument("name")
    sync.add_argument("--date", type=_day)
    sync.add_argument("--from", dest="start", type=_day)
    sync.add_argument("--to", dest="end", type=_day)
    sync.add_argument("--force", action="store_true", help="fetch succeeded days again")
    sync.add_argument("--wait", action="store_true", help="wait for the pipeline and records")
    sync.add_argument("--json", action="store_true")
    sync.set_defaults(handler=sync_command)

    from batchops_tui.cli import sources_more

    sources_more.register(sub, identity, commands)


def _usage(parser: argparse.ArgumentParser, choices: str) -> Any:
    async def show(args: argparse.Namespace, cli: Cli) -> int:
        parser.print_usage(sys.stderr)
        cli.error(f"choose a command: {choices}.")
        return EXIT_USAGE

    return show


def _secret(args: argparse.Namespace) -> str | None:
    if not args.secret_stdin:
        return None
    lines = sys.stdin.read().splitlines()
    # with --password-stdin too, the account password is the first line, the secret the next
    return lines[0] if lines else ""


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


async def list_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
    db = await cli.database()
    async with db.unit() as uow:
        rows = await list_sources(uow, actor=actor)
    if args.json:
        cli.print_json([r.as_json() for r in rows])
        return EXIT_OK
    if not rows:
        cli.print("no sources.")
        return EXIT_OK
    body = [
        [
            r.name,
            r.kind.value,
            r.department or "-",
            r.health,
            _when(r.last_success_at),
            (r.last_error or "")[:40],
        ]
        for r in rows
    ]
    cli.print(table(body, ["NAME", "KIND", "DEPARTMENT", "HEALTH", "LAST SUCCESS", "LAST ERROR"]))
    return EXIT_OK


def _print_source(cli: Cli, verb: str, row: SourceInfo) -> None:
    cli.print(
        f"source {row.name} ({row.kind.value}, {row.department or 'no department'}) {verb}; "
        f"{row.health}."
    )


async def show_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
    db = await cli.database()
    async with db.unit() as uow:
        row = await get_source(uow, actor=actor, name=args.name)
        jobs = await list_jobs(uow, actor=actor, name=args.name, limit=20)
    if args.json:
        cli.print_json([row.as_json() | {"jobs": [j.as_json() for j in jobs]}])
        return EXIT_OK
    data = row.as_json()
    for key in (
        "name",
        "kind",
        "department",
        "health",
        "enabled",
        "last_synced_id",
        "last_success_at",
        "last_error",
        "incident_id",
    ):
        cli.print(f"{key:>16}: {data[key] if data[key] is not None else '-'}")
    import json

    cli.print(f"{'config':>16}: {json.dumps(row.config, sort_keys=True)}")
    if jobs:
        cli.print("")
        cli.print(
            table(
                [
                    [
                        j.day.isoformat(),
                        j.partition or "-",
                        j.status.value,
                        str(j.attempts),
                        str(j.rows),
                        (j.error or "")[:50],
                    ]
                    for j in jobs
                ],
                ["DATE", "PARTITION", "STATUS", "TRIES", "ROWS", "ERROR"],
            )
        )
    return EXIT_OK


async def add_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
    config = parse_config_text(args.source_config)
    password = _secret(args)
    db = await cli.database()
    async with db.unit() as uow:
        row = await add_source(
            uow,
            actor=actor,
            name=args.name,
            kind=args.kind,
            department=args.department,
            config=config,
            password=password,
        )
    if args.json:
        cli.print_json([row.as_json()])
    else:
        _print_source(cli, "added", row)
    return EXIT_OK


async def edit_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
    if args.source_config is None and args.department is None and not args.secret_stdin:
        cli.error("nothing to change: give --config, --department or --secret-stdin.")
        return EXIT_USAGE
    config = parse_config_text(args.source_config) if args.source_config is not None else None
    password = _secret(args)
    db = await cli.database()
    async with db.unit() as uow:
        row = await edit_source(
            uow,
            actor=actor,
            name=args.name,
            config=config,
            department=args.department,
            password=password,
        )
    if args.json:
        cli.print_json([row.as_json()])
    else:
        _print_source(cli, "updated", row)
    return EXIT_OK


async def toggle_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
    db = await cli.database()
    async with db.unit() as uow:
        row = await set_source_enabled(uow, actor=actor, name=args.name, enabled=args.enabled)
    _print_source(cli, "enabled" if args.enabled else "disabled", row)
    return EXIT_OK


async def remove_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
    db = await cli.database()
    async with db.unit() as uow:
        row = await remove_source(uow, actor=actor, name=args.name)
    cli.print(f"source {row.name} removed with its jobs and records.")
    return EXIT_OK


async def test_command(args: argparse.Namespace, cli: Cli) -> int:
    from batchops_core.sources.testing import test_source

    actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
    db = await cli.database()
    report = await test_source(db, cli.settings, actor=actor, name=args.name, file=args.file)
    if args.json:
        cli.print_json([report.as_json()])
    else:
        for line in report.lines():
            cli.print(line)
    return EXIT_OK if report.ok else EXIT_FAILED


def _days(args: argparse.Namespace) -> list[date] | None:
    from batchops_core.sources.cadence import days_between

    if args.date and (args.start or args.end):
        raise ValidationFailed("give --date or --from/--to, not both.")
    if args.date:
        return [args.date]
    if args.start or args.end:
        if not (args.start and args.end):
            raise ValidationFailed("--from and --to go together.")
        return days_between(args.start, args.end)
    return None


async def sync_command(args: argparse.Namespace, cli: Cli) -> int:
    from batchops_core.sources.sync import sync_source
    from batchops_tui.cli.sources_more import dispatcher_for

    actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
    days = _days(args)
    db = await cli.database()
    async with dispatcher_for(db, cli.settings) as dispatcher:
        report = await sync_source(
            db,
            cli.settings,
            actor=actor,
            name=args.name,
            days=days,
            force=args.force,
            wait=args.wait or dispatcher.embedded,
            dispatcher=dispatcher,
        )
    if args.json:
        cli.print_json([report.as_json()])
    elif report.error:
        cli.error(f"source {report.source}: {report.error}")
    else:
        cli.print(f"source {report.source}: {report.rows:,} rows stored.")
        for line in report.skipped:
            cli.print(f"  skipped {line}")
        for job in report.jobs:
            tail = f": {job.error}" if job.error else ""
            cli.print(
                f"  {job.day} {job.partition or '-'} {job.status.value}, {job.rows} rows{tail}"
            )
    return EXIT_OK if report.ok else EXIT_FAILED
