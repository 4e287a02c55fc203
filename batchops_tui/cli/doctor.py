"""`batchops doctor`: one line per check, non-zero exit when a required check fails."""

from __future__ import annotations

import argparse

from batchops_core.doctor import run_checks
from batchops_tui.cli.common import EXIT_FAILED, EXIT_OK, Cli


def register(sub: argparse._SubParsersAction) -> None:
    doctor = sub.add_parser("doctor", help="check configuration, database, Redis, storage and SMTP")
    doctor.set_defaults(handler=doctor_command)


async def doctor_command(args: argparse.Namespace, cli: Cli) -> int:
    checks = await run_checks(cli.settings)
    for check in checks:
        cli.print(f"{check.verdict.value:<4}  {check.name:<9} {check.detail}")
    return EXIT_FAILED if any(c.failed for c in checks) else EXIT_OK
