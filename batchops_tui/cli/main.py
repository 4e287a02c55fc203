"""`batchops`: the TUI when called bare, the scriptable CLI with a subcommand.

Each command group lives in its own module with a `register(subparsers)` function; handlers are
async and return the exit status. Exit 0 success, 1 failure, 2 usage error.

Start-up is decided before anything heavy is imported. The command modules pull in SQLAlchemy,
Alembic, arq and argon2 (~1.5 s here); the TUI needs none of them before its sign-in screen, and
`batchops --help` needs none at all. So the commands are first known only by name, from the table
below: the first word of the command line picks one entry, only that entry's module is imported
and registers its parser, and `--help` lists the table without importing any module. A test checks
that each module registers exactly the names the table gives it.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING, Any

from batchops_core.errors import BatchOpsError

if TYPE_CHECKING:
    import argparse

    from batchops_core.infra.config import Settings

EXIT_FAILED = 1
EXIT_USAGE = 2


@dataclass(frozen=True)
class Command:
    """One top-level command: its name, the module of batchops_tui/cli/ that registers it (a
    module may register several), its one line for `batchops --help`, and its aliases."""

    name: str
    module: str
    help: str
    aliases: tuple[str, ...] = ()


# Add a command group with one line: the command, its module in batchops_tui/cli/, its help.
COMMAND_GROUPS: list[Command] = [
    Command("init", "setup", "create the database, storage folders and seed data"),
    Command("migrate", "setup", "upgrade the database schema (safe to repeat); --new writes one"),
    Command("doctor", "doctor", "check configuration, database, Redis, storage and SMTP"),
    Command("user", "users", "create and administer accounts"),
    Command("account", "accounts", "verify an email address or reset a password by code"),
    Command("audit", "audit", "read the audit log (admins)"),
    Command("upload", "upload", "store and queue files for processing"),
    Command(
        "status", "status", "queued, processing and recent work, worker health, next schedules"
    ),
    Command("schedule", "schedules", "list, create, edit and run cron schedules", ("schedules",)),
    Command("source", "sources", "external data sources: add, test, sync", ("sources",)),
    Command("missing", "sources", "expected source days with no data; --run fetches them"),
    Command("records", "sources", "query the records that sources delivered"),
    Command("shift", "attendance", "attendance shifts: add, list, edit, remove"),
    Command("holiday", "attendance", "holidays: add, list, remove, import"),
    Command("employee", "attendance", "employees: add, list, edit, remove, import"),
    Command("punch", "attendance", "punches: import, manual add, approve, reject, list"),
    Command("attendance", "attendance", "process, show, absentees, A-WO-A corrections, register"),
    Command("department", "departments", "departments and validation profiles", ("departments",)),
    Command(
        "known-error", "known_errors", "known error patterns: add, edit, test", ("known-errors",)
    ),
    Command("runs", "runs", "run history, stages, rerun, cancel", ("run",)),
    Command("incidents", "incidents", "incident queue and RCA actions", ("incident",)),
    Command("reports", "reports", "published reports: export, send, process again", ("report",)),
    Command("restore", "restore", "restore a backup's database and stored files"),
    Command("completion", "completion", "print a shell completion script (bash or zsh)"),
]


def _by_name() -> dict[str, Command]:
    return {name: c for c in COMMAND_GROUPS for name in (c.name, *c.aliases)}


def chosen_command(argv: Sequence[str]) -> Command | None:
    """The table entry named by the first word of the command line that is not an option."""
    value_follows = False
    for token in argv:
        if value_follows:
            value_follows = False
        elif token == "--config":
            value_follows = True
        elif token == "--":
            return None
        elif not token.startswith("-"):
            return _by_name().get(token)
    return None


def load_group(module: str) -> ModuleType:
    return importlib.import_module(f"batchops_tui.cli.{module}")


def build_parser(modules: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The parser with the given command modules registered (None: all of them, for completion
    scripts); every other command is listed by name and help only, from the table."""
    import argparse

    from batchops_core.version import VersionAction

    parser = argparse.ArgumentParser(
        prog="batchops",
        description="BatchOps, the batch-operations control room. Without a command: the TUI.",
    )
    parser.add_argument(
        "--config", help="path of config.toml (default: BATCHOPS_CONFIG, ./config.toml, XDG)"
    )
    parser.add_argument("--version", action=VersionAction)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    wanted = list(dict.fromkeys(c.module for c in COMMAND_GROUPS) if modules is None else modules)
    for module in dict.fromkeys(wanted):
        load_group(module).register(sub)
    for command in COMMAND_GROUPS:
        if command.module not in wanted:
            sub.add_parser(command.name, aliases=list(command.aliases), help=command.help)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(0o027)  # the database, storage, reports and backups it writes are not world-readable
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv:
        command = chosen_command(argv)
        args: Any = build_parser([command.module] if command else []).parse_args(argv)
    else:  # bare `batchops`: the TUI, without building (or importing) a parser
        args = SimpleNamespace(config=None)
    if getattr(args, "without_settings", None):  # e.g. `completion`: needs no configuration
        return int(args.without_settings(args))
    from batchops_core.infra.config import load_settings

    try:
        if args.config:
            from pathlib import Path

            settings = load_settings(Path(args.config))
        else:
            settings = load_settings()
    except BatchOpsError as exc:
        print(f"batchops: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not hasattr(args, "handler"):
        from batchops_tui.launch import run_tui

        return run_tui(settings)
    return _run_command(args, settings)


def _run_command(args: Any, settings: Settings) -> int:
    import asyncio

    from batchops_tui.cli.common import Cli

    cli = Cli(settings=settings)

    async def run() -> int:
        try:
            return await args.handler(args, cli)
        finally:
            await cli.close()

    try:
        return asyncio.run(run())
    except BatchOpsError as exc:
        cli.error(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        cli.error("interrupted.")
        return 130
    except BrokenPipeError:  # the reader went away (`batchops audit | head`): no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
