"""`batchops incidents list|show|assign|analyze|retry|resolve|archive|reopen` — the Issues
screen's queue and RCA workspace for scripts.

Every action is held to the same rules as the screen (staff only, lifecycle transitions) by the
incident services; a refused action prints one sentence and exits 1. `retry` re-queues the
incident's upload from its failed stage; without Redis this process runs it before returning.
"""

from __future__ import annotations

import argparse
from typing import Any

from batchops_core.enums import IncidentStatus, Severity
from batchops_core.errors import ValidationFailed
from batchops_core.services import incidents as svc
from batchops_tui.cli.common import EXIT_OK, Cli, table
from batchops_tui.cli.scripting import actor_of, identity, plain, usage, when

VERBS = "list, show, assign, analyze, retry, resolve, archive, reopen"


def register(sub: argparse._SubParsersAction) -> None:
    ident = identity()
    group = sub.add_parser(
        "incidents", aliases=["incident"], help="incident queue and root-cause analysis"
    )
    commands = group.add_subparsers(title="incident commands", metavar="COMMAND")
    group.set_defaults(handler=usage(group, VERBS))

    listing = commands.add_parser("list", parents=[ident], help="incidents, last seen first")
    listing.add_argument("--status", choices=[s.value for s in IncidentStatus])
    listing.add_argument("--severity", choices=[s.value for s in Severity])
    listing.add_argument("--search", help="title, message, error code or source")
    listing.add_argument("--limit", type=int, default=50, help="how many (default 50, max 500)")
    listing.set_defaults(handler=list_command)

    def one(name: str, text: str) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, parents=[ident], help=text)
        parser.add_argument("incident_id", type=int, metavar="ID")
        return parser

    one("show", "one incident with its timeline").set_defaults(handler=show_command)
    assign = one("assign", "assign to an admin or moderator ('none' to unassign)")
    assign.add_argument("user", metavar="USER|none")
    assign.set_defaults(handler=assign_command)
    analyze = one("analyze", "record the analysis (acknowledges the incident)")
    _rca(analyze)
    analyze.add_argument("--impact", dest="impact_summary")
    analyze.add_argument("--notes", dest="analysis_notes")
    analyze.set_defaults(handler=analyze_command)
    one("retry", "process the incident's upload again from its failed stage").set_defaults(
        handler=retry_command
    )
    resolve = one("resolve", "resolve with a root cause and the corrective action")
    _rca(resolve, required=True)
    resolve.set_defaults(handler=resolve_command)
    one("archive", "archive a resolved incident").set_defaults(handler=archive_command)
    reopen = one("reopen", "open a resolved incident again")
    reopen.add_argument("--reason", default="")
    reopen.set_defaults(handler=reopen_command)


def _rca(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    parser.add_argument("--root-cause", dest="root_cause", required=required)
    parser.add_argument("--corrective-action", dest="corrective_action", required=required)


def _emit(args: argparse.Namespace, cli: Cli, detail: svc.IncidentDetail, verb: str) -> int:
    if args.json:
        cli.print_json(plain(detail))
    else:
        cli.print(f"incident #{detail.id} {verb}: {detail.status.value}.")
    return EXIT_OK


async def _act(args: argparse.Namespace, cli: Cli, fn: Any, verb: str, **kwargs: Any) -> int:
    actor = await actor_of(args, cli)
    db = await cli.database()
    async with db.unit() as uow:
        detail = await fn(uow, actor=actor, incident_id=args.incident_id, **kwargs)
    return _emit(args, cli, detail, verb)


async def list_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await actor_of(args, cli)
    db = await cli.database()
    async with db.unit() as uow:
        page = await svc.list_incidents(
            uow,
            actor=actor,
            status=IncidentStatus(args.status) if args.status else None,
            severity=Severity(args.severity) if args.severity else None,
            search=args.search,
            limit=args.limit,
        )
    if args.json:
        cli.print_json([plain(r) for r in page.items])
        return EXIT_OK
    body = [
        [
            str(r.id),
            r.status.value,
            r.severity.value,
            r.error_code,
            r.source[:20],
            r.assignee or "-",
            str(r.occurrences),
            when(r.last_seen_at),
        ]
        for r in page.items
    ]
    headers = ["ID", "STATUS", "SEVERITY", "CODE", "SOURCE", "ASSIGNEE", "SEEN", "LAST SEEN"]
    cli.print(table(body, headers) if body else "no incidents.")
    return EXIT_OK


async def show_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await actor_of(args, cli)
    db = await cli.database()
    async with db.unit() as uow:
        d = await svc.get_incident(uow, actor=actor, incident_id=args.incident_id)
    if args.json:
        cli.print_json(plain(d))
        return EXIT_OK
    cli.print(f"incident #{d.id} {d.title}")
    cli.print(f"  {d.status.value}, {d.severity.value}, {d.category}, seen {d.occurrences}x")
    cli.print(f"  {d.error_code}: {d.message}")
    for label, value in (
        ("hint", d.hint),
        ("assignee", d.assignee),
        ("known error", d.known_error),
        ("root cause", d.root_cause),
        ("corrective", d.corrective_action),
        ("upload", f"#{d.upload_id} {d.upload_filename or ''}" if d.upload_id else ""),
    ):
        if value:
            cli.print(f"  {label + ':':13} {value}")
    for entry in d.timeline:
        cli.print(f"  {when(entry.at)} {entry.kind:12} {entry.actor:10} {entry.detail}")
    return EXIT_OK


async def assign_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await actor_of(args, cli)
    db = await cli.database()
    async with db.unit() as uow:
        user_id = None
        if args.user.strip().lower() not in ("none", "-", ""):
            people = await svc.list_assignees(uow, actor=actor)
            found = [p for p in people if p.username == args.user.strip().lower()]
            if not found:
                names = ", ".join(p.username for p in people)
                raise ValidationFailed(
                    f"'{args.user}' cannot take incidents; choose an active admin or moderator: "
                    f"{names}."
                )
            user_id = found[0].id
        detail = await svc.assign_incident(
            uow, actor=actor, incident_id=args.incident_id, assignee_id=user_id
        )
    return _emit(args, cli, detail, "assigned" if user_id else "unassigned")


async def analyze_command(args: argparse.Namespace, cli: Cli) -> int:
    fields = ("root_cause", "corrective_action", "impact_summary", "analysis_notes")
    given = {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
    return await _act(args, cli, svc.analyze_incident, "analyzed", **given)


async def resolve_command(args: argparse.Namespace, cli: Cli) -> int:
    return await _act(
        args,
        cli,
        svc.resolve_incident,
        "resolved",
        root_cause=args.root_cause,
        corrective_action=args.corrective_action,
    )


async def archive_command(args: argparse.Namespace, cli: Cli) -> int:
    return await _act(args, cli, svc.archive_incident, "archived")


async def reopen_command(args: argparse.Namespace, cli: Cli) -> int:
    return await _act(args, cli, svc.reopen_incident, "reopened", reason=args.reason)


async def retry_command(args: argparse.Namespace, cli: Cli) -> int:
    from batchops_core.worker.dispatcher import Dispatcher

    actor = await actor_of(args, cli)
    db = await cli.database()
    dispatcher = await Dispatcher.connect(db, cli.settings)
    try:
        detail = await svc.retry_incident(db, dispatcher, actor=actor, incident_id=args.incident_id)
        if dispatcher.embedded:
            await dispatcher.wait_idle()
            async with db.unit() as uow:
                detail = await svc.get_incident(uow, actor=actor, incident_id=args.incident_id)
    finally:
        await dispatcher.close()
    upload = detail.upload_status.value if detail.upload_status else "gone"
    return _emit(args, cli, detail, f"retried (upload {upload})")
