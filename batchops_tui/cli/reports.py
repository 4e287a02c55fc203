"""`batchops reports list|show|export|send|again` — published reports for scripts.

`export ID --format csv|pdf|fixlist [-o PATH]` copies one file out through the export service:
only into the export folder (`[export_dir]`), never into the data directory, and an existing file
is kept unless `--force`. `send ID [--to ADDRESS…]` mails the CSV and PDF to the department's
contact and staff (or the given addresses). `again ID [--plan MODE] [--plan-config JSON|@FILE]`
processes the upload's file again with another plan (a duplicate is processed anyway).
"""

from __future__ import annotations

import argparse

from batchops_core.services.distribute import send_report
from batchops_core.services.reports import ReportFormat, export_report, get_report, list_reports
from batchops_tui.cli.common import EXIT_OK, Cli, table
from batchops_tui.cli.scripting import actor_of, identity, plain, usage, when


def register(sub: argparse._SubParsersAction) -> None:
    ident = identity()
    group = sub.add_parser("reports", aliases=["report"], help="published reports: export, send")
    commands = group.add_subparsers(title="report commands", metavar="COMMAND")
    group.set_defaults(handler=usage(group, "list, show, export, send, again"))

    listing = commands.add_parser("list", parents=[ident], help="published reports, newest first")
    listing.add_argument("--search", help="file name or department")
    listing.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    listing.set_defaults(handler=list_command)

    show = commands.add_parser("show", parents=[ident], help="one report and its summary")
    show.add_argument("upload_id", type=int, metavar="ID")
    show.set_defaults(handler=show_command)

    export = commands.add_parser("export", parents=[ident], help="copy a report file out")
    export.add_argument("upload_id", type=int, metavar="ID")
    export.add_argument("--format", choices=[f.value for f in ReportFormat], default="csv")
    export.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="file or folder inside the export folder ([export_dir]; default: the folder)",
    )
    export.add_argument("--force", action="store_true", help="replace an existing file")
    export.set_defaults(handler=export_command)

    send = commands.add_parser("send", parents=[ident], help="mail the report (staff)")
    send.add_argument("upload_id", type=int, metavar="ID")
    send.add_argument("--to", action="append", default=[], metavar="ADDRESS")
    send.add_argument(
        "--format", action="append", choices=["csv", "pdf"], help="attach only these (repeatable)"
    )
    send.set_defaults(handler=send_command)

    again = commands.add_parser("again", parents=[ident], help="process the file again")
    again.add_argument("upload_id", type=int, metavar="ID")
    again.add_argument("--plan", help="transform, append, delete or custom (default: its own)")
    again.add_argument("--plan-config", metavar="JSON|@FILE", help="the plan's settings")
    again.set_defaults(handler=again_command)


async def list_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await actor_of(args, cli)
    db = await cli.database()
    async with db.unit() as uow:
        page = await list_reports(
            uow, actor=actor, search=args.search, limit=max(1, min(args.limit, 500))
        )
    if args.json:
        cli.print_json([plain(r) for r in page.items])
        return EXIT_OK
    body = [
        [
            str(r.upload_id),
            r.filename[:32],
            r.department or "manual",
            r.status.value,
            "-" if r.rows_out is None else f"{r.rows_out:,}",
            str(r.rows_quarantined or 0),
            when(r.published_at),
        ]
        for r in page.items
    ]
    headers = ["ID", "FILE", "DEPARTMENT", "STATUS", "ROWS", "QUARANTINED", "PUBLISHED"]
    cli.print(table(body, headers) if body else "no published reports.")
    return EXIT_OK


async def show_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await actor_of(args, cli)
    db = await cli.database()
    async with db.unit() as uow:
        detail = await get_report(uow, actor=actor, upload_id=args.upload_id)
    if args.json:
        cli.print_json(plain(detail))
        return EXIT_OK
    r = detail.row
    cli.print(f"report of upload #{r.upload_id} {r.filename} ({r.department or 'manual'})")
    cli.print(f"  {r.status.value} {when(r.published_at)}, {r.rows_out or 0:,} rows")
    for label, path in (("csv", r.report_csv), ("pdf", r.report_pdf), ("fix-list", None)):
        shown = detail.fixlist_csv if label == "fix-list" else path
        if shown:
            cli.print(f"  {label + ':':9} {shown}")
    for key, value in (detail.summary.get("metadata") or [])[:12]:
        cli.print(f"  {key + ':':18} {value}")
    return EXIT_OK


async def export_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await actor_of(args, cli)
    db = await cli.database()
    async with db.unit() as uow:
        done = await export_report(
            uow,
            actor=actor,
            upload_id=args.upload_id,
            fmt=args.format,
            destination=args.output,
            force=args.force,
        )
    if args.json:
        cli.print_json(plain(done))
    else:
        cli.print(f"{'replaced' if done.replaced else 'wrote'} {done.path}")
    return EXIT_OK


async def send_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await actor_of(args, cli)
    db = await cli.database()
    sent = await send_report(
        db,
        actor=actor,
        upload_id=args.upload_id,
        to=args.to,
        formats=args.format or ("csv", "pdf"),
    )
    if args.json:
        cli.print_json(sent.as_json())
    else:
        cli.print(
            f"report #{sent.upload_id} sent to {', '.join(sent.recipients)} "
            f"({', '.join(sent.attachments)})."
        )
    return EXIT_OK


async def again_command(args: argparse.Namespace, cli: Cli) -> int:
    from batchops_core.services.actions import process_again
    from batchops_core.worker.dispatcher import Dispatcher
    from batchops_tui.cli.upload import plan_config_from

    actor = await actor_of(args, cli)
    db = await cli.database()
    config = plan_config_from(args.plan_config) if args.plan_config else None
    dispatcher = await Dispatcher.connect(db, cli.settings)
    try:
        info = await process_again(
            db,
            dispatcher,
            actor=actor,
            upload_id=args.upload_id,
            plan_mode=args.plan,
            plan_config=config,
        )
        if dispatcher.embedded:
            await dispatcher.wait_idle()
    finally:
        await dispatcher.close()
    if args.json:
        cli.print_json(info.as_json())
    else:
        cli.print(f"upload #{args.upload_id} submitted again as upload #{info.id}.")
    return EXIT_OK
