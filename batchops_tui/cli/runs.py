"""`batchops runs list|show|rerun|cancel` — the Runs screen for scripts.

`list` filters like the screen (status, kind, schedule, upload, search) and pages through
`--limit` rows, newest first. `rerun` runs a failed or cancelled run again (a pipeline run from
its failed stage, an automation run by firing its schedule); without Redis this process does the
work before returning. `cancel` stops a queued or running run (the upload is recorded
`cancelled`). Exit 0 success, 1 refused or failed, 2 usage.
"""

from __future__ import annotations

import argparse

from batchops_core.enums import RunKind, RunStatus
from batchops_core.services.actions import cancel_run
from batchops_core.services.runs import RunRow, get_run, list_runs, rerun_from_failed_stage
from batchops_tui.cli.common import EXIT_OK, Cli, table
from batchops_tui.cli.scripting import actor_of, identity, plain, usage, when


def register(sub: argparse._SubParsersAction) -> None:
    ident = identity()
    group = sub.add_parser("runs", aliases=["run"], help="run history, one run's stages, rerun")
    commands = group.add_subparsers(title="runs commands", metavar="COMMAND")
    group.set_defaults(handler=usage(group, "list, show, rerun, cancel"))

    listing = commands.add_parser("list", parents=[ident], help="runs, newest first")
    listing.add_argument("--status", choices=[s.value for s in RunStatus])
    listing.add_argument("--kind", choices=[k.value for k in RunKind])
    listing.add_argument("--upload", type=int, metavar="ID", help="runs of this upload")
    listing.add_argument("--schedule", type=int, metavar="ID", help="runs of this schedule")
    listing.add_argument("--search", help="task, error code, file name, schedule name or #id")
    listing.add_argument("--limit", type=int, default=50, help="how many (default 50, max 500)")
    listing.set_defaults(handler=list_command)

    show = commands.add_parser("show", parents=[ident], help="one run: stages, log, incidents")
    show.add_argument("run_id", type=int, metavar="ID")
    show.set_defaults(handler=show_command)

    rerun = commands.add_parser("rerun", parents=[ident], help="run a failed run again")
    rerun.add_argument("run_id", type=int, metavar="ID")
    rerun.set_defaults(handler=rerun_command)

    cancel = commands.add_parser("cancel", parents=[ident], help="stop a queued or running run")
    cancel.add_argument("run_id", type=int, metavar="ID")
    cancel.add_argument("--reason", default="")
    cancel.set_defaults(handler=cancel_command)


def _duration(row: RunRow) -> str:
    seconds = row.duration_seconds
    return "-" if seconds is None else f"{seconds:.1f}s"


async def list_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await actor_of(args, cli)
    db = await cli.database()
    async with db.unit() as uow:
        page = await list_runs(
            uow,
            actor=actor,
            status=RunStatus(args.status) if args.status else None,
            kind=RunKind(args.kind) if args.kind else None,
            upload_id=args.upload,
            job_id=args.schedule,
            search=args.search,
            limit=args.limit,
        )
    if args.json:
        cli.print_json([plain(r) for r in page.items])
        return EXIT_OK
    body = [
        [
            str(r.id),
            r.kind.value,
            r.title[:30],
            r.status.value,
            str(r.attempt),
            when(r.created_at),
            _duration(r),
            "-" if r.rows_out is None else f"{r.rows_out:,}",
            r.error_code or "",
        ]
        for r in page.items
    ]
    headers = ["ID", "KIND", "WHAT", "STATUS", "TRY", "CREATED", "TOOK", "ROWS", "ERROR"]
    cli.print(table(body, headers) if body else "no runs.")
    return EXIT_OK


async def show_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await actor_of(args, cli)
    db = await cli.database()
    async with db.unit() as uow:
        detail = await get_run(uow, actor=actor, run_id=args.run_id)
    if args.json:
        data = plain(detail)
        data["failed_stage"] = detail.failed_stage
        data["can_rerun"] = detail.can_rerun
        cli.print_json(data)
        return EXIT_OK
    run = detail.run
    cli.print(f"run #{run.id} {run.kind.value} {run.title}: {run.status.value}, try {run.attempt}")
    cli.print(
        f"  created {when(run.created_at)}, took {_duration(run)}, worker {run.worker or '-'}"
    )
    if run.error_code:
        cli.print(f"  {run.error_code}: {run.error_message or ''}")
    for step in detail.steps:
        ms = "-" if step.duration_ms is None else f"{step.duration_ms:.0f} ms"
        cli.print(f"  {step.position + 1}. {step.stage.value:12} {step.status.value:10} {ms}")
    for line in detail.log[-20:]:
        cli.print(f"  | {line}")
    if detail.incident_ids:
        cli.print(f"  incidents: {', '.join(f'#{i}' for i in detail.incident_ids)}")
    return EXIT_OK


async def rerun_command(args: argparse.Namespace, cli: Cli) -> int:
    from batchops_core.worker.dispatcher import Dispatcher

    actor = await actor_of(args, cli)
    db = await cli.database()
    dispatcher = await Dispatcher.connect(db, cli.settings)
    try:
        job = await rerun_from_failed_stage(db, dispatcher, actor=actor, run_id=args.run_id)
        if dispatcher.embedded:
            await dispatcher.wait_idle()
    finally:
        await dispatcher.close()
    if args.json:
        cli.print_json({"run_id": args.run_id, "job_id": job, "queued": True})
    else:
        cli.print(f"run #{args.run_id} queued again" + (f" as {job}." if job else "."))
    return EXIT_OK


async def cancel_command(args: argparse.Namespace, cli: Cli) -> int:
    actor = await actor_of(args, cli)
    db = await cli.database()
    async with db.unit() as uow:
        done = await cancel_run(uow, actor=actor, run_id=args.run_id, reason=args.reason)
    if args.json:
        cli.print_json(done.as_json())
    else:
        cli.print(f"run #{args.run_id} cancelled (it was {done.was}).")
    return EXIT_OK
