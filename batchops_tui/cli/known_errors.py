"""`batchops known-error list|show|add|edit|enable|disable|remove|test`.

`test PATTERN` (or `test ID`, a saved one) runs the pattern over the last 50 incidents the way the
incident recorder would and lists which matched, before it tags anything. Patterns must run on
RE2 (no backreferences or lookarounds); a refused one is named in one sentence, exit 1.
Reading is open to every role, testing to staff, changes to admins.
"""

from __future__ import annotations

import argparse
from typing import Any

from batchops_core.known_errors import KnownErrorInfo
from batchops_core.services.known_errors import (
    TEST_WINDOW,
    create_known_error,
    delete_known_error,
    get_known_error,
    known_error_json,
    list_known_errors,
    set_known_error_active,
    try_pattern,
    update_known_error,
)
from batchops_tui.cli.common import EXIT_OK, EXIT_USAGE, Cli, table
from batchops_tui.cli.scripting import actor_of, identity, usage

VERBS = "list, show, add, edit, enable, disable, remove, test"
FIELDS = (
    ("pattern", "the regex, searched in '<ERROR_CODE>: <message>'"),
    ("stage", "standardize|validate|transform|summarize|publish, or 'any'"),
    ("severity", "low|medium|high|critical"),
    ("category", "e.g. data, format, schema, infrastructure"),
    ("root_cause", "why it happens"),
    ("fix", "what to do about it"),
    ("remediation", "none|reread_delimiter|reread_encoding|apply_alias|retry_later"),
    ("remediation_args", "the remediation's arguments as a JSON object"),
)


def _fields(parser: argparse.ArgumentParser, *, adding: bool) -> None:
    for name, text in FIELDS:
        option = "--" + name.replace("_", "-")
        parser.add_argument(option, dest=name, required=adding and name == "pattern", help=text)


def register(sub: argparse._SubParsersAction) -> None:
    ident = identity()
    group = sub.add_parser(
        "known-error", aliases=["known-errors"], help="known error patterns: add, edit, test"
    )
    commands = group.add_subparsers(title="known-error commands", metavar="COMMAND")
    group.set_defaults(handler=usage(group, VERBS))

    listing = commands.add_parser("list", parents=[ident], help="every known error")
    listing.add_argument("--active", action="store_true", help="only active ones")
    listing.set_defaults(handler=list_command)

    show = commands.add_parser("show", parents=[ident], help="one known error")
    show.add_argument("known_error", metavar="ID|NAME")
    show.set_defaults(handler=show_command)

    add = commands.add_parser("add", parents=[ident], help="add a known error (admins)")
    add.add_argument("name")
    _fields(add, adding=True)
    add.set_defaults(handler=add_command)

    edit = commands.add_parser("edit", parents=[ident], help="change a known error (admins)")
    edit.add_argument("known_error", metavar="ID|NAME")
    edit.add_argument("--name")
    _fields(edit, adding=False)
    edit.set_defaults(handler=edit_command)

    for verb, active in (("enable", True), ("disable", False)):
        toggle = commands.add_parser(verb, parents=[ident], help=f"{verb} a known error (admins)")
        toggle.add_argument("known_error", metavar="ID|NAME")
        toggle.set_defaults(handler=toggle_command, active=active)

    remove = commands.add_parser("remove", parents=[ident], help="delete a known error (admins)")
    remove.add_argument("known_error", metavar="ID|NAME")
    remove.set_defaults(handler=remove_command)

    test = commands.add_parser(
        "test", parents=[ident], help=f"which of the last {TEST_WINDOW} incidents a pattern matches"
    )
    test.add_argument("pattern", help="a regex, or the id of a saved known error")
    test.add_argument("--stage", help="only incidents of this stage")
    test.add_argument("--last", type=int, default=TEST_WINDOW, help="how many incidents")
    test.set_defaults(handler=test_command)


def _line(info: KnownErrorInfo) -> str:
    stage = info.stage.value if info.stage else "any stage"
    state = "" if info.active else " (disabled)"
    return f"known error #{info.id} {info.name}{state}: /{info.pattern}/ at {stage}"


def _emit(args: argparse.Namespace, cli: Cli, info: KnownErrorInfo, verb: str) -> int:
    if args.json:
        cli.print_json(known_error_json(info))
    else:
        cli.print(f"{_line(info)} {verb}.")
    return EXIT_OK


async def list_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await actor_of(args, cli)
    db = await cli.database()
    async with db.unit() as uow:
        rows = await list_known_errors(uow, actor=actor, include_inactive=not args.active)
    if args.json:
        cli.print_json([known_error_json(r) for r in rows])
        return EXIT_OK
    body = [
        [
            str(r.id),
            r.name,
            "yes" if r.active else "no",
            r.stage.value if r.stage else "any",
            r.severity.value,
            r.remediation.value,
            r.pattern,
        ]
        for r in rows
    ]
    headers = ["ID", "NAME", "ON", "STAGE", "SEVERITY", "REMEDIATION", "PATTERN"]
    cli.print(table(body, headers) if rows else "no known errors.")
    return EXIT_OK


async def show_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await actor_of(args, cli)
    db = await cli.database()
    async with db.unit() as uow:
        info = await get_known_error(uow, actor=actor, ref=args.known_error)
    if args.json:
        cli.print_json(known_error_json(info))
        return EXIT_OK
    cli.print(_line(info))
    for label, value in (
        ("severity", info.severity.value),
        ("category", info.category),
        ("root cause", info.root_cause),
        ("fix", info.fix),
        ("remediation", f"{info.remediation.value} {info.remediation_args or ''}".strip()),
    ):
        cli.print(f"  {label + ':':13} {value or '-'}")
    return EXIT_OK


def _given(args: argparse.Namespace) -> dict[str, Any]:
    names = [name for name, _ in FIELDS] + (["name"] if hasattr(args, "name") else [])
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


async def add_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await actor_of(args, cli)
    values = _given(args)
    values.pop("name", None)
    db = await cli.database()
    async with db.unit() as uow:
        info = await create_known_error(uow, actor=actor, name=args.name, **values)
    return _emit(args, cli, info, "added")


async def edit_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await actor_of(args, cli)
    changes = _given(args)
    if not changes:
        cli.error("nothing to change: give --name, --pattern, --stage, --severity, --fix, ….")
        return EXIT_USAGE
    db = await cli.database()
    async with db.unit() as uow:
        info = await update_known_error(uow, actor=actor, ref=args.known_error, **changes)
    return _emit(args, cli, info, "updated")


async def toggle_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await actor_of(args, cli)
    db = await cli.database()
    async with db.unit() as uow:
        info = await set_known_error_active(
            uow, actor=actor, ref=args.known_error, active=args.active
        )
    return _emit(args, cli, info, "enabled" if args.active else "disabled")


async def remove_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await actor_of(args, cli)
    db = await cli.database()
    async with db.unit() as uow:
        info = await delete_known_error(uow, actor=actor, ref=args.known_error)
    return _emit(args, cli, info, "removed")


async def test_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await actor_of(args, cli)
    db = await cli.database()
    async with db.unit() as uow:
        pattern, stage = args.pattern, args.stage
        if pattern.strip().isdigit():
            saved = await get_known_error(uow, actor=actor, ref=pattern)
            pattern = saved.pattern
            stage = stage or (saved.stage.value if saved.stage else None)
        result = await try_pattern(uow, actor=actor, pattern=pattern, stage=stage, limit=args.last)
    if args.json:
        cli.print_json(result.as_json())
        return EXIT_OK
    cli.print(
        f"/{result.pattern}/ matches {len(result.matched)} of the last {result.checked} "
        "incident(s)" + (f" at {result.stage.value}" if result.stage else "") + "."
    )
    if result.matched:
        body = [
            [
                str(h.id),
                h.error_code,
                h.stage.value if h.stage else "-",
                h.known_error or "-",
                h.message[:60],
            ]
            for h in result.matched
        ]
        cli.print(table(body, ["INCIDENT", "CODE", "STAGE", "TAGGED AS", "MESSAGE"]))
    return EXIT_OK
