"""`batchops init` and `batchops migrate`: create or upgrade the database."""

from __future__ import annotations

import argparse

from batchops_core.demo import seed_demo
from batchops_core.infra.migrate import upgrade
from batchops_tui.cli.common import EXIT_OK, Cli


def register(sub: argparse._SubParsersAction) -> None:
    init = sub.add_parser("init", help="create the database, storage folders and seed data")
    init.add_argument("--demo", action="store_true", help="also add demo accounts and uploads")
    init.set_defaults(handler=init_command)
    migrate = sub.add_parser("migrate", help="upgrade the database schema (safe to repeat)")
    migrate.set_defaults(handler=migrate_command)


async def migrate_command(args: argparse.Namespace, cli: Cli) -> int:
    db = await cli.database(check_schema=False)
    await db.check()
    before, after = await upgrade(db)
    if before == after:
        cli.print(f"database {db.display_url} is up to date (schema {after}).")
    else:
        cli.print(f"database {db.display_url} upgraded from {before or 'empty'} to {after}.")
    return EXIT_OK


async def init_command(args: argparse.Namespace, cli: Cli) -> int:
    for folder in ("uploads", "exports", "work", "backups"):
        (cli.settings.storage_path / folder).mkdir(parents=True, exist_ok=True)
    status = await migrate_command(args, cli)
    if args.demo:
        db = await cli.database()
        for line in await seed_demo(db, cli.settings):
            cli.print(line)
    cli.print(f"data directory: {cli.settings.data_path}")
    return status
