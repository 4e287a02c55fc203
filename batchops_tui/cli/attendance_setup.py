"""Handlers of `batchops shift|holiday|employee|punch …` (parsers in `attendance.py`)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from batchops_core.attendance import calendar, employees, punches
from batchops_core.attendance.views import PunchImport
from batchops_tui.cli.common import EXIT_FAILED, EXIT_OK, Cli, signed_in_actor, table

SHIFT_OPTIONS = (
    "grace_in",
    "grace_out",
    "half_day_hours",
    "full_day_hours",
    "overtime_after",
    "overtime_before",
    "lunch_minutes",
    "week_off",
)


def plain(value: Any) -> Any:
    """JSON-ready: dates and times ISO 8601 (with `T`), enums by value, dataclasses as dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat(timespec="minutes" if value.tzinfo is None else "seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


async def call(
    args: argparse.Namespace, cli: Cli, service: Callable[..., Awaitable[Any]], **kw: Any
) -> Any:
    """One service call in one unit of work, as the `--as` account or the shell operator."""
    actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
    db = await cli.database()
    async with db.unit() as uow:
        return await service(uow, actor=actor, **kw)


def emit(cli: Cli, args: argparse.Namespace, items: list[Any], text: Callable[[], str]) -> int:
    if args.json:
        cli.print_json([plain(i) for i in items])
    else:
        cli.print(text())
    return EXIT_OK


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _shift_line(s: Any) -> str:
    night = " (crosses midnight)" if s.crosses_midnight else ""
    return (
        f"shift '{s.name}' {s.start}-{s.end}{night}, grace {s.grace_in}/{s.grace_out} min, "
        f"half/full day {s.half_day_hours:g}/{s.full_day_hours:g} h, lunch {s.lunch_minutes} "
        f"min, overtime after {s.overtime_after} min, off {s.week_off or 'none'}"
    )


async def shift_add(args: argparse.Namespace, cli: Cli) -> int:
    info = await call(
        args,
        cli,
        calendar.add_shift,
        name=args.name,
        start=args.start,
        end=args.end,
        **_given(args, SHIFT_OPTIONS),
    )
    return emit(cli, args, [info], lambda: f"added {_shift_line(info)}.")


async def shift_edit(args: argparse.Namespace, cli: Cli) -> int:
    changes = _given(args, ("name", "start", "end", *SHIFT_OPTIONS))
    info = await call(args, cli, calendar.edit_shift, shift=args.shift, **changes)
    return emit(cli, args, [info], lambda: f"changed {_shift_line(info)}.")


async def shift_remove(args: argparse.Namespace, cli: Cli) -> int:
    info = await call(args, cli, calendar.remove_shift, shift=args.shift)
    return emit(cli, args, [info], lambda: f"removed shift '{info.name}'.")


async def shift_list(args: argparse.Namespace, cli: Cli) -> int:
    rows = await call(args, cli, calendar.list_shifts)
    head = ["NAME", "START", "END", "GRACE", "HALF/FULL H", "LUNCH", "OT AFTER", "OFF"]
    body = [
        [
            s.name,
            s.start,
            s.end,
            f"{s.grace_in}/{s.grace_out}",
            f"{s.half_day_hours:g}/{s.full_day_hours:g}",
            str(s.lunch_minutes),
            str(s.overtime_after),
            s.week_off or "-",
        ]
        for s in rows
    ]
    return emit(cli, args, rows, lambda: table(body, head) if rows else "no shifts.")


async def holiday_add(args: argparse.Namespace, cli: Cli) -> int:
    info = await call(
        args, cli, calendar.add_holiday, day=args.date, name=args.name, type=args.type
    )
    return emit(cli, args, [info], lambda: f"added {info.type} holiday {info.day} '{info.name}'.")


async def holiday_remove(args: argparse.Namespace, cli: Cli) -> int:
    info = await call(args, cli, calendar.remove_holiday, day=args.date)
    return emit(cli, args, [info], lambda: f"removed holiday {info.day} '{info.name}'.")


async def holiday_list(args: argparse.Namespace, cli: Cli) -> int:
    rows = await call(args, cli, calendar.list_holidays, year=args.year)
    body = [[str(h.day), h.day.strftime("%a"), h.type.value, h.name] for h in rows]
    text = table(body, ["DATE", "DAY", "TYPE", "NAME"])
    return emit(cli, args, rows, lambda: text if rows else "no holidays.")


async def holiday_import(args: argparse.Namespace, cli: Cli) -> int:
    from batchops_core.attendance.files import HOLIDAY_COLUMNS, pick, read_rows, require_columns

    path = Path(args.file)
    rows = pick(read_rows(path), HOLIDAY_COLUMNS)
    require_columns(rows, path, "date", "name")
    done, problems = await call(args, cli, calendar.import_holidays, rows=rows)
    for problem in problems:
        cli.error(problem)
    emit(cli, args, done, lambda: f"imported {len(done)} holidays from {path.name}.")
    return EXIT_FAILED if problems and not done else EXIT_OK


def _employee_line(e: Any) -> str:
    dates = f", joined {e.joined}" if e.joined else ""
    dates += f", left {e.left}" if e.left else ""
    return (
        f"employee {e.code} '{e.name}' on shift {e.shift}, {e.department or 'no department'}{dates}"
    )


async def employee_add(args: argparse.Namespace, cli: Cli) -> int:
    info = await call(
        args,
        cli,
        employees.add_employee,
        code=args.code,
        name=args.name,
        shift=args.shift,
        **_given(args, ("department", "joined", "left")),
    )
    return emit(cli, args, [info], lambda: f"added {_employee_line(info)}.")


async def employee_edit(args: argparse.Namespace, cli: Cli) -> int:
    changes = _given(args, ("name", "shift", "department", "joined", "left"))
    info = await call(args, cli, employees.edit_employee, code=args.code, **changes)
    return emit(cli, args, [info], lambda: f"changed {_employee_line(info)}.")


async def employee_remove(args: argparse.Namespace, cli: Cli) -> int:
    info = await call(args, cli, employees.remove_employee, code=args.code)
    return emit(cli, args, [info], lambda: f"removed employee {info.code}.")


async def employee_list(args: argparse.Namespace, cli: Cli) -> int:
    rows = await call(
        args, cli, employees.list_employees, department=args.department, search=args.search
    )
    head = ["CODE", "NAME", "SHIFT", "DEPARTMENT", "JOINED", "LEFT"]
    body = [
        [e.code, e.name, e.shift, e.department or "-", str(e.joined or "-"), str(e.left or "-")]
        for e in rows
    ]
    return emit(cli, args, rows, lambda: table(body, head) if rows else "no employees.")


async def employee_import(args: argparse.Namespace, cli: Cli) -> int:
    result = await call(args, cli, employees.import_employees, path=Path(args.file))
    for problem in result.problems:
        cli.error(problem)
    emit(
        cli,
        args,
        [result],
        lambda: (
            f"employees: {result.added} added, {result.updated} updated, "
            f"{len(result.problems)} rows refused."
        ),
    )
    return EXIT_FAILED if result.problems and not (result.added or result.updated) else EXIT_OK


def _import_line(r: PunchImport, name: str) -> str:
    unknown = f" ({', '.join(r.unknown_codes[:10])})" if r.unknown_codes else ""
    return (
        f"{name}: {r.added} punches added, {r.duplicates} already known, "
        f"{len(r.unknown_codes)} unknown employee codes{unknown}, {len(r.problems)} rows refused, "
        f"{r.recomputed_days} processed days recomputed."
    )


async def punch_import(args: argparse.Namespace, cli: Cli) -> int:
    path = Path(args.file)
    result = await call(args, cli, punches.import_punches, path=path)
    for problem in result.problems[:50]:
        cli.error(problem)
    emit(cli, args, [result], lambda: _import_line(result, path.name))
    taken = result.added + result.duplicates
    return EXIT_FAILED if not taken and (result.problems or result.unknown_codes) else EXIT_OK


async def punch_add(args: argparse.Namespace, cli: Cli) -> int:
    info = await call(
        args,
        cli,
        punches.request_punch,
        code=args.code,
        at=args.at,
        direction=args.direction,
        reason=args.reason,
    )
    return emit(
        cli,
        args,
        [info],
        lambda: (
            f"manual punch #{info.id} for {info.employee} at {info.at:%Y-%m-%d %H:%M} "
            f"{info.direction} is pending approval."
        ),
    )


async def punch_decide(args: argparse.Namespace, cli: Cli) -> int:
    info = await call(args, cli, punches.decide_punch, punch_id=args.id, approve=args.approve)
    return emit(cli, args, [info], lambda: f"manual punch #{info.id} {info.approval.value}.")


async def punch_list(args: argparse.Namespace, cli: Cli) -> int:
    rows = await call(
        args,
        cli,
        punches.list_punches,
        approval="pending" if args.pending else None,
        employee=args.employee,
        day=args.date,
    )
    head = ["ID", "EMPLOYEE", "AT", "DIR", "DEVICE", "STATE", "REASON"]
    body = [
        [
            str(p.id),
            p.employee,
            f"{p.at:%Y-%m-%d %H:%M}",
            p.direction.value,
            p.device or "-",
            p.approval.value if p.manual else "device",
            p.reason[:30],
        ]
        for p in rows
    ]
    return emit(cli, args, rows, lambda: table(body, head) if rows else "no punches.")
