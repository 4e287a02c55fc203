"""What the script-facing command groups (department, known-error, runs, incidents, reports)
share: the `--as` identity options, `--json` output of service dataclasses, usage lines.

`--json` prints a list of objects for listings and one object for a single item; timestamps are
ISO 8601 with `T` and an offset (`common.json_value`), enums by value.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any

from batchops_core.permissions import Actor
from batchops_tui.cli.common import EXIT_USAGE, Cli, signed_in_actor


def identity() -> argparse.ArgumentParser:
    """The parent parser of every subcommand: `--as USER`, `--password-stdin`, `--json`."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--as",
        dest="as_user",
        metavar="USER",
        default=os.environ.get("BATCHOPS_USER"),
        help="act as this account (default: $BATCHOPS_USER, else the shell operator as admin)",
    )
    parent.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin (default: $BATCHOPS_PASSWORD)",
    )
    parent.add_argument("--json", action="store_true", help="machine-readable output")
    return parent


async def actor_of(args: argparse.Namespace, cli: Cli) -> Actor:
    return await signed_in_actor(cli, args.as_user, password_stdin=args.password_stdin)


def usage(parser: argparse.ArgumentParser, choices: str) -> Any:
    """A handler for the bare group: print its usage and exit 2."""

    async def show(args: argparse.Namespace, cli: Cli) -> int:
        parser.print_usage(sys.stderr)
        cli.error(f"choose a command: {choices}.")
        return EXIT_USAGE

    return show


def plain(value: Any) -> Any:
    """A service dataclass (nested too) as plain JSON-ready data; leaves datetimes and enums to
    `json_value`."""
    if hasattr(value, "as_json"):
        return value.as_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def when(value: Any) -> str:
    """A timestamp for the text tables: UTC to the minute, `-` for none."""
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"
