"""`batchops missing`, `batchops records query` and `batchops source calendar …`.

`records query` pages through the records by keyset (1,000 a page) and writes each page as it
comes, so a query over millions of rows holds one page in memory, never the whole answer.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_tui.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Cli, signed_in_actor, table

PAGE = 1000


@asynccontextmanager
async def dispatcher_for(db: Database, settings: Settings) -> AsyncIterator[Any]:
    """The worker dispatcher (arq with Redis, else in-process), closed after the command."""
    try:
        from batchops_core.worker.dispatcher import Dispatcher
    except ImportError:  # before the worker package landed
        from batchops_core.queue import Dispatcher  # type: ignore[no-redef]
    dispatcher = await Dispatcher.connect(db, settings)
    try:
        yield dispatcher
    finally:
        await dispatcher.close()


def register(
    sub: argparse._SubParsersAction, identity: argparse.ArgumentParser, source_commands: Any
) -> None:
    from batchops_tui.cli.sources import _day

    missing = sub.add_parser(
        "missing", parents=[identity], help="expected source days with no data; --run fetches them"
    )
    missing.add_argument("--source")
    missing.add_argument("--from", dest="start", type=_day)
    missing.add_argument("--to", dest="end", type=_day)
    missing.add_argument("--run", action="store_true", help="queue a job for every missing day")
    missing.add_argument("--wait", action="store_true")
    missing.add_argument("--json", action="store_true")
    missing.set_defaults(handler=missing_command)

    records = sub.add_parser("records", help="query the records that sources delivered")
    rec_commands = records.add_subparsers(title="records commands", metavar="COMMAND")
    records.set_defaults(handler=_usage(records))
    query = rec_commands.add_parser("query", parents=[identity], help="records by source and date")
    query.add_argument("--source")
    query.add_argument("--from", dest="start", type=_day)
    query.add_argument("--to", dest="end", type=_day)
    query.add_argument("--where", action="append", default=[], metavar="COL=VALUE")
    query.add_argument("--format", choices=["csv", "json"], default="csv")
    query.add_argument("-o", dest="output", help="write to this file instead of stdout")
    query.set_defaults(handler=records_command)

    cal = source_commands.add_parser("calendar", help="the school calendar: terms and holidays")
    cal_commands = cal.add_subparsers(title="calendar commands", metavar="COMMAND")
    cal.set_defaults(handler=_usage(cal))
    listing = cal_commands.add_parser("list", parents=[identity], help="terms and holidays")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=calendar_list_command)
    add = cal_commands.add_parser("add", parents=[identity], help="add a term or holiday (admins)")
    add.add_argument("kind", choices=["term", "holiday"])
    add.add_argument("name")
    add.add_argument("--from", dest="start", type=_day, required=True)
    add.add_argument("--to", dest="end", type=_day, required=True)
    add.set_defaults(handler=calendar_add_command)
    remove = cal_commands.add_parser("remove", parents=[identity], help="remove an entry (admins)")
    remove.add_argument("id", type=int)
    remove.set_defaults(handler=calendar_remove_command)


def _usage(parser: argparse.ArgumentParser) -> Any:
    async def show(args: argparse.Namespace, cli: Cli) -> int:
        parser.print_usage(sys.stderr)
        cli.error("choose a command (see --help).")
        return EXIT_USAGE

    return show


async def missing_command(args: argparse.Namespace, cli: Cli) -> int:
    from batchops_core.sources.missing import find_missing, run_missing

    actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
    db = await cli.database()
    if args.run:
        async with dispatcher_for(db, cli.settings) as dispatcher:
            missing, reports = await run_missing(
                db,
                cli.settings,
                actor=actor,
                source=args.source,
                start=args.start,
                end=args.end,
                wait=args.wait or dispatcher.embedded,
                dispatcher=dispatcher,
            )
        if args.json:
            cli.print_json([r.as_json() for r in reports])
        else:
            cli.print(f"{len(missing)} missing day(s) in {len(reports)} source(s) queued.")
            for r in reports:
                done = sum(j.status.value == "succeeded" for j in r.jobs)
                cli.print(
                    f"  {r.source}: {done} of {len(r.jobs)} job(s) succeeded"
                    + (f"; {r.error}" if r.error else "")
                )
        return EXIT_OK if all(r.ok for r in reports) else EXIT_FAILED
    async with db.unit() as uow:
        missing = await find_missing(
            uow,
            actor=actor,
            settings=cli.settings,
            source=args.source,
            start=args.start,
            end=args.end,
        )
    if args.json:
        cli.print_json([m.as_json() for m in missing])
        return EXIT_OK
    if not missing:
        cli.print("no missing days.")
        return EXIT_OK
    body = [
        [m.source, m.partition or "-", m.day.isoformat(), m.state, (m.error or "")[:50]]
        for m in missing
    ]
    cli.print(table(body, ["SOURCE", "PARTITION", "DATE", "STATE", "ERROR"]))
    return EXIT_OK


class _Writer:
    """Writes pages as CSV (columns from the first page's data, the rest as JSON in `other`)
    or as one JSON list, without holding more than a page."""

    def __init__(self, out: TextIO, fmt: str) -> None:
        self.out, self.fmt, self.count = out, fmt, 0
        self.columns: list[str] | None = None
        self.csv: Any = None

    def page(self, items: list[Any]) -> None:
        for item in items:
            row = item.as_json()
            if self.fmt == "json":
                self.out.write(
                    ("[\n  " if self.count == 0 else ",\n  ") + json.dumps(row, default=str)
                )
            else:
                if self.columns is None:
                    self.columns = list(row["data"])
                    self.csv = csv.writer(self.out, lineterminator="\n")
                    self.csv.writerow(
                        ["source", "date", "partition", "key", *self.columns, "other"]
                    )
                data = dict(row["data"])
                values = [data.pop(c, "") for c in self.columns]
                other = json.dumps(data, default=str) if data else ""
                self.csv.writerow(
                    [row["source"], row["date"], row["partition"], row["key"], *values, other]
                )
            self.count += 1

    def close(self) -> None:
        if self.fmt == "json":
            self.out.write("[]\n" if self.count == 0 else "\n]\n")
        elif self.columns is None:
            self.out.write("source,date,partition,key\n")


async def records_command(args: argparse.Namespace, cli: Cli) -> int:
    from batchops_core.sources.records import parse_where

    actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
    where = parse_where(args.where)
    db = await cli.database()
    if not args.output:
        count = await _write_records(db, actor, args, where, cli.out)
        return EXIT_OK
    target = Path(args.output)
    temp = target.with_name(f".{target.name}.part")
    try:
        with temp.open("w", encoding="utf-8", newline="") as handle:
            count = await _write_records(db, actor, args, where, handle)
        os.replace(temp, target)  # a failed query leaves no half-written file
    finally:
        temp.unlink(missing_ok=True)
    cli.print(f"{count:,} record(s) written to {args.output}.")
    return EXIT_OK


async def _write_records(
    db: Database, actor: Any, args: argparse.Namespace, where: list[Any], out: TextIO
) -> int:
    from batchops_core.sources.records import query_records

    writer = _Writer(out, args.format)
    after = None
    while True:
        async with db.unit() as uow:
            page = await query_records(
                uow,
                actor=actor,
                source=args.source,
                start=args.start,
                end=args.end,
                where=where,
                after=after,
                limit=PAGE,
            )
        writer.page(page.items)
        if page.after is None:
            break
        after = page.after
    writer.close()
    return writer.count


async def calendar_list_command(args: argparse.Namespace, cli: Cli) -> int:
    from batchops_core.sources.calendar import list_calendar

    actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
    db = await cli.database()
    async with db.unit() as uow:
        rows = await list_calendar(uow, actor=actor)
    if args.json:
        cli.print_json([r.as_json() for r in rows])
    elif not rows:
        cli.print("the calendar is empty: every weekday is a school day.")
    else:
        body = [
            [str(r.id), r.kind.value, r.name, r.starts_on.isoformat(), r.ends_on.isoformat()]
            for r in rows
        ]
        cli.print(table(body, ["ID", "KIND", "NAME", "FROM", "TO"]))
    return EXIT_OK


async def calendar_add_command(args: argparse.Namespace, cli: Cli) -> int:
    from batchops_core.sources.calendar import add_calendar_entry

    actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
    db = await cli.database()
    async with db.unit() as uow:
        row = await add_calendar_entry(
            uow, actor=actor, kind=args.kind, name=args.name, start=args.start, end=args.end
        )
    cli.print(f"{row.kind.value} #{row.id} '{row.name}' {row.starts_on} to {row.ends_on} added.")
    return EXIT_OK


async def calendar_remove_command(args: argparse.Namespace, cli: Cli) -> int:
    from batchops_core.sources.calendar import remove_calendar_entry

    actor = await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)
    db = await cli.database()
    async with db.unit() as uow:
        row = await remove_calendar_entry(uow, actor=actor, entry_id=args.id)
    cli.print(f"{row.kind.value} #{row.id} '{row.name}' removed.")
    return EXIT_OK
