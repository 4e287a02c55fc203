"""`batchops department list|show|add|edit|deactivate|activate` for scripts and admins.

A department's validation profile is edited here: `--gradebook/--no-gradebook`, `--key-column
NAME|none`, `--required a,b,c`, `--alias HEADER=column` (repeatable; `--clear-aliases` first).
Reading is open to every role; changes need an admin. Exit 0 success, 1 refused, 2 usage.
"""

from __future__ import annotations

import argparse
from typing import Any

from batchops_core.services.departments import (
    DepartmentRow,
    create_department,
    get_department,
    list_departments,
    set_department_active,
    update_department,
)
from batchops_tui.cli.common import EXIT_OK, EXIT_USAGE, Cli, table
from batchops_tui.cli.scripting import actor_of, identity, usage, when

VERBS = "list, show, add, edit, deactivate, activate"


def _profile_options(parser: argparse.ArgumentParser, *, editing: bool) -> None:
    parser.add_argument("--description")
    parser.add_argument("--contact-email", metavar="ADDRESS", help="where its reports are sent")
    parser.add_argument(
        "--gradebook",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="held to the gradebook rule: an identifier and at least one numeric score",
    )
    parser.add_argument("--key-column", metavar="NAME", help="the row identifier, or 'none'")
    parser.add_argument("--required", metavar="A,B,C", help="columns every file must have")
    parser.add_argument(
        "--alias",
        action="append",
        default=[],
        metavar="HEADER=COLUMN",
        help="a header of this department's exports and the column it means (repeatable)",
    )
    if editing:
        parser.add_argument("--name", help="rename (uploads and schedules follow)")
        parser.add_argument("--clear-aliases", action="store_true", help="drop every alias first")


def register(sub: argparse._SubParsersAction) -> None:
    ident = identity()
    group = sub.add_parser(
        "department", aliases=["departments"], help="departments and their validation profiles"
    )
    commands = group.add_subparsers(title="department commands", metavar="COMMAND")
    group.set_defaults(handler=usage(group, VERBS))

    listing = commands.add_parser("list", parents=[ident], help="every department")
    listing.add_argument("--active", action="store_true", help="only active departments")
    listing.set_defaults(handler=list_command)

    show = commands.add_parser("show", parents=[ident], help="one department and its profile")
    show.add_argument("department", help="id or name")
    show.set_defaults(handler=show_command)

    add = commands.add_parser("add", parents=[ident], help="create a department (admins)")
    add.add_argument("name")
    _profile_options(add, editing=False)
    add.set_defaults(handler=add_command)

    edit = commands.add_parser("edit", parents=[ident], help="change a department (admins)")
    edit.add_argument("department", help="id or name")
    _profile_options(edit, editing=True)
    edit.set_defaults(handler=edit_command)

    for verb, active in (("deactivate", False), ("activate", True)):
        toggle = commands.add_parser(verb, parents=[ident], help=f"{verb} a department (admins)")
        toggle.add_argument("department", help="id or name")
        toggle.set_defaults(handler=toggle_command, active=active)


def _print(cli: Cli, row: DepartmentRow) -> None:
    state = "active" if row.active else "deactivated"
    aliases = ", ".join(f"{k}={v}" for k, v in row.aliases.items()) or "none"
    cli.print(f"department #{row.id} {row.name} ({state})")
    cli.print(f"  contact:  {row.contact_email or '-'}   staff: {row.members}")
    cli.print(f"  profile:  {row.profile.describe()}")
    cli.print(f"  aliases:  {aliases}")
    if row.description:
        cli.print(f"  about:    {row.description}")


def _emit(args: argparse.Namespace, cli: Cli, row: DepartmentRow, verb: str) -> int:
    if args.json:
        cli.print_json(row.as_json())
    else:
        cli.print(f"department #{row.id} {row.name} {verb}: {row.profile.describe()}.")
    return EXIT_OK


async def list_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await actor_of(args, cli)
    db = await cli.database()
    async with db.unit() as uow:
        rows = await list_departments(uow, actor=actor, include_inactive=not args.active)
    if args.json:
        cli.print_json([r.as_json() for r in rows])
        return EXIT_OK
    body = [
        [
            str(r.id),
            r.name,
            "yes" if r.active else "no",
            "yes" if r.gradebook else "no",
            r.key_column or "-",
            ",".join(r.required_columns) or "-",
            r.contact_email or "-",
            str(r.members),
            when(r.last_submitted_at),
        ]
        for r in rows
    ]
    headers = ["ID", "NAME", "ON", "GRADEBOOK", "KEY", "REQUIRED", "CONTACT", "STAFF", "LAST FILE"]
    cli.print(table(body, headers) if rows else "no departments.")
    return EXIT_OK


async def show_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await actor_of(args, cli)
    db = await cli.database()
    async with db.unit() as uow:
        row = await get_department(uow, actor=actor, ref=args.department)
    if args.json:
        cli.print_json(row.as_json())
    else:
        _print(cli, row)
    return EXIT_OK


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for option, key in (
        ("description", "description"),
        ("contact_email", "contact_email"),
        ("gradebook", "gradebook"),
        ("key_column", "key_column"),
        ("required", "required_columns"),
        ("name", "name"),
    ):
        value = getattr(args, option, None)
        if value is not None:
            changes[key] = value
    return changes


async def add_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await actor_of(args, cli)
    changes = _changes(args)
    db = await cli.database()
    async with db.unit() as uow:
        row = await create_department(
            uow,
            actor=actor,
            name=args.name,
            description=changes.get("description", ""),
            contact_email=changes.get("contact_email", ""),
            gradebook=bool(changes.get("gradebook", False)),
            key_column=changes.get("key_column", "student_id"),
            required_columns=changes.get("required_columns"),
            aliases=",".join(args.alias) or None,
        )
    return _emit(args, cli, row, "created")


async def edit_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await actor_of(args, cli)
    changes = _changes(args)
    db = await cli.database()
    async with db.unit() as uow:
        if args.alias or args.clear_aliases:
            current = {} if args.clear_aliases else None
            if current is None:
                found = await get_department(uow, actor=actor, ref=args.department)
                current = dict(found.aliases)
            extra = ",".join(args.alias)
            text = ",".join([*(f"{k}={v}" for k, v in current.items()), extra]).strip(",")
            changes["aliases"] = text
        if not changes:
            cli.error(
                "nothing to change: give --name, --description, --contact-email, --gradebook/"
                "--no-gradebook, --key-column, --required, --alias or --clear-aliases."
            )
            return EXIT_USAGE
        row = await update_department(uow, actor=actor, ref=args.department, **changes)
    return _emit(args, cli, row, "updated")


async def toggle_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await actor_of(args, cli)
    db = await cli.database()
    async with db.unit() as uow:
        row = await set_department_active(uow, actor=actor, ref=args.department, active=args.active)
    return _emit(args, cli, row, "activated" if args.active else "deactivated")
