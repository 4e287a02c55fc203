"""`batchops shift|holiday|employee|punch|attendance …`: the Attendance domain for scripts.

Who is acting: without `--as`, the shell operator (an admin named after the OS login); with
`--as USER` (or `BATCHOPS_USER`) and the password from `--password-stdin` or
`BATCHOPS_PASSWORD`, that account with its role: admins manage shifts, holidays and employees,
moderators approve punches and run corrections, everyone may view and request a manual punch.

Exit status: 0 success, 1 refused or failed (one line on stderr), 2 usage error. `--json`
prints a list of objects; times are ISO 8601 with `T`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from batchops_tui.cli import attendance_days as D
from batchops_tui.cli import attendance_setup as S
from batchops_tui.cli.common import EXIT_USAGE, Cli


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
        help="read the password from the first line of stdin (default: $BATCHOPS_PASSWORD)",
    )
    identity.add_argument("--json", action="store_true", help="machine-readable output")
    return identity


def _usage(parser: argparse.ArgumentParser, choices: str) -> Any:
    async def show(args: argparse.Namespace, cli: Cli) -> int:
        parser.print_usage(sys.stderr)
        cli.error(f"choose a command: {choices}.")
        return EXIT_USAGE

    return show


def _group(
    sub: argparse._SubParsersAction, name: str, help_text: str, choices: str
) -> argparse._SubParsersAction:
    group = sub.add_parser(name, help=help_text)
    group.set_defaults(handler=_usage(group, choices))
    return group.add_subparsers(title=f"{name} commands", metavar="COMMAND")


def _shift_options(parser: argparse.ArgumentParser, *, edit: bool) -> None:
    dflt = None if edit else argparse.SUPPRESS
    parser.add_argument("--grace-in", type=int, default=dflt, help="minutes (default 10)")
    parser.add_argument("--grace-out", type=int, default=dflt, help="minutes (default 10)")
    parser.add_argument("--half-day-hours", type=float, default=dflt, help="default 3")
    parser.add_argument("--full-day-hours", type=float, default=dflt, help="default 6")
    parser.add_argument("--overtime-after", type=int, default=dflt, help="minutes (default 30)")
    parser.add_argument(
        "--overtime-before", type=int, default=dflt, help="minutes, 0 = not counted (default)"
    )
    parser.add_argument("--lunch-minutes", type=int, default=dflt, help="default 30")
    parser.add_argument("--week-off", default=dflt, help="e.g. sat,sun (default) or none")


def _register_shift(sub: argparse._SubParsersAction, who: argparse.ArgumentParser) -> None:
    cmds = _group(sub, "shift", "attendance shifts (admins change them)", "add, list, edit, remove")
    add = cmds.add_parser("add", parents=[who], help="a new shift")
    add.add_argument("name")
    add.add_argument("--start", required=True, help="e.g. 09:00")
    add.add_argument("--end", required=True, help="e.g. 17:00 (before the start: next day)")
    _shift_options(add, edit=False)
    add.set_defaults(handler=S.shift_add)
    cmds.add_parser("list", parents=[who], help="all shifts").set_defaults(handler=S.shift_list)
    edit = cmds.add_parser("edit", parents=[who], help="change a shift")
    edit.add_argument("shift", help="name or id")
    edit.add_argument("--name")
    edit.add_argument("--start")
    edit.add_argument("--end")
    _shift_options(edit, edit=True)
    edit.set_defaults(handler=S.shift_edit)
    remove = cmds.add_parser("remove", parents=[who], help="delete an unused shift")
    remove.add_argument("shift", help="name or id")
    remove.set_defaults(handler=S.shift_remove)


def _register_holiday(sub: argparse._SubParsersAction, who: argparse.ArgumentParser) -> None:
    cmds = _group(sub, "holiday", "holidays (admins change them)", "add, list, remove, import")
    add = cmds.add_parser("add", parents=[who], help="a holiday")
    add.add_argument("date", help="e.g. 2026-11-14")
    add.add_argument("name")
    add.add_argument("--type", default="public", choices=["public", "festival", "school"])
    add.set_defaults(handler=S.holiday_add)
    listing = cmds.add_parser("list", parents=[who], help="holidays by date")
    listing.add_argument("--year", type=int)
    listing.set_defaults(handler=S.holiday_list)
    remove = cmds.add_parser("remove", parents=[who], help="delete a holiday")
    remove.add_argument("date")
    remove.set_defaults(handler=S.holiday_remove)
    imp = cmds.add_parser("import", parents=[who], help="CSV/XLSX: date, name, type")
    imp.add_argument("file")
    imp.set_defaults(handler=S.holiday_import)


def _register_employee(sub: argparse._SubParsersAction, who: argparse.ArgumentParser) -> None:
    cmds = _group(sub, "employee", "employees (admins change them)", "add, list, edit, import")
    add = cmds.add_parser("add", parents=[who], help="a new employee")
    add.add_argument("code")
    add.add_argument("--name", required=True)
    add.add_argument("--shift", required=True)
    add.add_argument("--department", default="")
    add.add_argument("--joined", default=None, help="date, e.g. 2026-11-10")
    add.add_argument("--left", default=None, help="date")
    add.set_defaults(handler=S.employee_add)
    listing = cmds.add_parser("list", parents=[who], help="employees")
    listing.add_argument("--department")
    listing.add_argument("--search")
    listing.set_defaults(handler=S.employee_list)
    edit = cmds.add_parser("edit", parents=[who], help="change an employee")
    edit.add_argument("code")
    for option in ("--name", "--shift", "--department", "--joined", "--left"):
        edit.add_argument(option, default=None)
    edit.set_defaults(handler=S.employee_edit)
    remove = cmds.add_parser("remove", parents=[who], help="delete (for mistakes; else --left)")
    remove.add_argument("code")
    remove.set_defaults(handler=S.employee_remove)
    imp = cmds.add_parser("import", parents=[who], help="CSV/XLSX: code, name, shift, …")
    imp.add_argument("file")
    imp.set_defaults(handler=S.employee_import)


def _register_punch(sub: argparse._SubParsersAction, who: argparse.ArgumentParser) -> None:
    cmds = _group(sub, "punch", "punches: import, manual, approve", "import, add, approve, list")
    imp = cmds.add_parser("import", parents=[who], help="CSV/XLSX: code, timestamp, direction")
    imp.add_argument("file")
    imp.set_defaults(handler=S.punch_import)
    add = cmds.add_parser("add", parents=[who], help="a manual punch (pending approval)")
    add.add_argument("code")
    add.add_argument("--at", required=True, help='e.g. "2026-11-02 09:04"')
    add.add_argument("--direction", default="BOTH", type=str.upper, choices=["IN", "OUT", "BOTH"])
    add.add_argument("--reason", required=True)
    add.set_defaults(handler=S.punch_add)
    for verb in ("approve", "reject"):
        decide = cmds.add_parser(verb, parents=[who], help=f"{verb} a manual punch (moderators)")
        decide.add_argument("id", type=int)
        decide.set_defaults(handler=S.punch_decide, approve=verb == "approve")
    listing = cmds.add_parser("list", parents=[who], help="punches, newest first")
    listing.add_argument("--pending", action="store_true", help="the approval queue")
    listing.add_argument("--employee")
    listing.add_argument("--date")
    listing.set_defaults(handler=S.punch_list)


def _register_attendance(sub: argparse._SubParsersAction, who: argparse.ArgumentParser) -> None:
    cmds = _group(
        sub,
        "attendance",
        "process, show, absentees, corrections, register",
        "process, show, absentees, correct-awo, revert-awo, runs, register",
    )
    proc = cmds.add_parser("process", parents=[who], help="recompute days (idempotent)")
    for p in (proc, show := cmds.add_parser("show", parents=[who], help="days")):
        p.add_argument("--from", dest="date_from")
        p.add_argument("--to", dest="date_to")
        p.add_argument("--employee")
    proc.set_defaults(handler=D.process)
    show.add_argument("--department")
    show.add_argument("--status")
    show.set_defaults(handler=D.show)
    absent = cmds.add_parser("absentees", parents=[who], help="absent days of one date")
    absent.add_argument("--date")
    absent.add_argument("--notify", action="store_true", help="mail each department's contact")
    absent.set_defaults(handler=D.absentees)
    awo = cmds.add_parser("correct-awo", parents=[who], help="A–WO–A becomes A (moderators)")
    awo.add_argument("--from", dest="date_from")
    awo.add_argument("--to", dest="date_to")
    awo.set_defaults(handler=D.correct_awo)
    revert = cmds.add_parser("revert-awo", parents=[who], help="undo one correction run")
    revert.add_argument("run_id", type=int)
    revert.set_defaults(handler=D.revert_awo)
    runs = cmds.add_parser("runs", parents=[who], help="correction runs")
    runs.set_defaults(handler=D.runs)
    reg = cmds.add_parser("register", parents=[who], help="the monthly register (CSV or PDF)")
    reg.add_argument("--month", required=True, help="e.g. 2026-11")
    reg.add_argument("--department")
    reg.add_argument("--format", required=True, choices=["csv", "pdf"])
    reg.add_argument("-o", "--output", required=True, help="file to write")
    reg.set_defaults(handler=D.register_report)


def register(sub: argparse._SubParsersAction) -> None:
    who = _identity()
    _register_shift(sub, who)
    _register_holiday(sub, who)
    _register_employee(sub, who)
    _register_punch(sub, who)
    _register_attendance(sub, who)
