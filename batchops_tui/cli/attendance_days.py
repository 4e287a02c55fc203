"""Handlers of `batchops attendance …` (parsers in `attendance.py`)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from batchops_core.attendance import corrections, days, notify, register
from batchops_tui.cli.attendance_setup import call, emit, plain
from batchops_tui.cli.common import EXIT_FAILED, EXIT_OK, Cli, table


def _hm(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d}" if minutes else "-"


async def process(args: argparse.Namespace, cli: Cli) -> int:
    r = await call(
        args,
        cli,
        days.process_attendance,
        date_from=args.date_from,
        date_to=args.date_to,
        employee=args.employee,
    )
    return emit(
        cli,
        args,
        [r],
        lambda: (
            f"processed {r.date_from}..{r.date_to}: {r.employees} employees, {r.days} days; "
            f"{r.inserted} new, {r.updated} changed, {r.deleted} removed."
        ),
    )


async def show(args: argparse.Namespace, cli: Cli) -> int:
    rows = await call(
        args,
        cli,
        days.show_days,
        employee=args.employee,
        department=args.department,
        date_from=args.date_from,
        date_to=args.date_to,
        status=args.status,
    )
    if args.json:
        cli.print_json([r.as_json() for r in rows])
        return EXIT_OK
    if not rows:
        cli.print("no processed days in that range (run `batchops attendance process`).")
        return EXIT_OK
    head = ["EMPLOYEE", "DATE", "ST", "IN", "OUT", "WORK", "LATE", "EARLY", "OT", "FLAGS"]
    body = [
        [
            r.employee,
            f"{r.date} {r.date:%a}",
            r.status,
            f"{r.in_time:%H:%M}" if r.in_time else "-",
            f"{r.out_time:%H:%M}" if r.out_time else "-",
            _hm(r.work_minutes),
            str(r.late_minutes or "-"),
            str(r.early_exit_minutes or "-"),
            _hm(r.overtime_minutes),
            ",".join(r.flags) or "-",
        ]
        for r in rows
    ]
    cli.print(table(body, head))
    return EXIT_OK


async def absentees(args: argparse.Namespace, cli: Cli) -> int:
    if args.notify:
        mails = await call(args, cli, notify.absentee_mails, day=args.date)
        results = await notify.deliver(cli.settings, mails)
        if args.json:
            cli.print_json([plain(r) for r in results])
        for r in results:
            if not args.json:
                state = f"sent to {r.to}" if r.sent else f"not sent: {r.problem}"
                cli.print(f"{r.department or 'no department'}: {state}")
        return EXIT_OK if all(r.sent for r in results if r.to) else EXIT_FAILED
    rows = await call(args, cli, days.absentees, day=args.date)
    if args.json:
        cli.print_json([r.as_json() for r in rows])
        return EXIT_OK
    body = [[r.department or "-", r.employee, r.name, r.status] for r in rows]
    cli.print(table(body, ["DEPARTMENT", "EMPLOYEE", "NAME", "ST"]) if rows else "nobody absent.")
    return EXIT_OK


def _run_text(run: corrections.CorrectionRunInfo, verb: str) -> str:
    lines = [
        f"correction run #{run.id} {verb}: {run.changes} days ({run.date_from}..{run.date_to})."
    ]
    lines += [f"  {i.employee} {i.day} {i.before} -> {i.after}" for i in run.items[:50]]
    if len(run.items) > 50:
        lines.append(f"  … and {len(run.items) - 50} more")
    return "\n".join(lines)


async def correct_awo(args: argparse.Namespace, cli: Cli) -> int:
    run = await call(
        args, cli, corrections.correct_awo, date_from=args.date_from, date_to=args.date_to
    )
    return emit(cli, args, [run], lambda: _run_text(run, "recorded"))


async def revert_awo(args: argparse.Namespace, cli: Cli) -> int:
    run = await call(args, cli, corrections.revert_awo, run_id=args.run_id)
    return emit(cli, args, [run], lambda: _run_text(run, "reverted"))


async def runs(args: argparse.Namespace, cli: Cli) -> int:
    found = await call(args, cli, corrections.list_correction_runs)
    body = [
        [
            str(r.id),
            r.kind,
            f"{r.date_from}..{r.date_to}",
            str(r.changes),
            r.actor,
            f"reverted by {r.reverted_by}" if r.reverted_at else "active",
        ]
        for r in found
    ]
    text = table(body, ["RUN", "KIND", "RANGE", "DAYS", "BY", "STATE"])
    return emit(cli, args, found, lambda: text if found else "no correction runs.")


async def register_report(args: argparse.Namespace, cli: Cli) -> int:
    reg = await call(
        args, cli, register.month_register, month=args.month, department=args.department
    )
    path = Path(args.output)
    info = await asyncio.to_thread(register.write_register, reg, path, args.format)
    return emit(
        cli,
        args,
        [info],
        lambda: f"wrote the {reg.month:%Y-%m} register ({info['rows']} employees) to {path}.",
    )
