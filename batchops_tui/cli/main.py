"""`batchops`: the TUI when called bare, the scriptable CLI with a subcommand.

Each command group lives in its own module with a `register(subparsers)` function; handlers are
async and return the exit status. Exit 0 success, 1 failure, 2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from batchops_core.errors import BatchOpsError
from batchops_core.infra.config import load_settings
from batchops_tui.cli import (
    accounts,
    audit,
    doctor,
    schedules,
    setup,
    sources,
    status,
    upload,
    users,
)
from batchops_tui.cli.common import EXIT_FAILED, EXIT_USAGE, Cli

COMMAND_GROUPS = (setup, doctor, users, accounts, audit, upload, status, schedules, sources)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batchops",
        description="BatchOps, the batch-operations control room. Without a command: the TUI.",
    )
    parser.add_argument(
        "--config", help="path of config.toml (default: BATCHOPS_CONFIG, ./config.toml, XDG)"
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


async def _run(args: argparse.Namespace, cli: Cli) -> int:
    try:
        return await args.handler(args, cli)
    finally:
        await cli.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
    cli = Cli(settings=settings)
    try:
        return asyncio.run(_run(args, cli))
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
