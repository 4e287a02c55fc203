"""`batchops restore BACKUP [--into URL] [--force]`: a backup's database and stored files back.

Like `init` and `migrate`, restore runs on a server with direct access to the database and the
object store: whoever can read the configuration can already reach both, so it asks for no
BatchOps account. It names the OS login in the audit row it writes into the restored database.
A database that holds data (a user or an upload) is replaced only with `--force`.
"""

from __future__ import annotations

import argparse

from batchops_core.backup.restore import RestoreReport, catalogue, restore_backup
from batchops_tui.cli.common import EXIT_OK, EXIT_USAGE, Cli, shell_operator, table


def register(sub: argparse._SubParsersAction) -> None:
    command = sub.add_parser(
        "restore",
        help="restore a backup's database and stored files",
        description="Restore a backup written by the nightly run_daily_backup task: its rows "
        "into the configured database (or --into URL, SQLite or PostgreSQL whatever the backup "
        "came from), its stored files into the configured [storage]. BACKUP is a backup folder, "
        "a file:// or s3:// URL of one, a backup name under [retention] backup_url, or 'latest'.",
    )
    command.add_argument("backup", nargs="?", metavar="BACKUP", help="the backup to restore")
    command.add_argument(
        "--into",
        metavar="URL",
        help="the database URL to restore into (default: the configured database)",
    )
    command.add_argument(
        "--force",
        action="store_true",
        help="replace a database that already holds users or uploads (everything in it is "
        "deleted first; stop the daemons that use it)",
    )
    command.add_argument(
        "--list", action="store_true", help="list the backups under [retention] backup_url"
    )
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command.set_defaults(handler=restore_command)


async def restore_command(args: argparse.Namespace, cli: Cli) -> int:
    if args.list:
        return await _list(args, cli)
    if not args.backup:
        cli.error("say which backup to restore: batchops restore BACKUP (see --list).")
        return EXIT_USAGE
    report = await restore_backup(
        cli.settings, args.backup, actor=shell_operator(), into=args.into, force=args.force
    )
    if args.json:
        cli.print_json(report.as_json())
    else:
        cli.print(_describe(report))
    return EXIT_OK


def _size(count: int) -> str:
    value = float(count)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} bytes"


def _describe(report: RestoreReport) -> str:
    filled = [f"{name} {rows}" for name, rows in report.tables.items() if rows]
    lines = [
        f"restored {report.backup} (taken {report.created_at}, schema {report.revision})",
        f"  from     {report.source}",
        f"  into     {report.database} (now at schema {report.schema})",
        f"  tables   {len(report.tables)} tables, {report.rows} rows: {', '.join(filled)}",
        f"  files    {report.objects} stored files, {_size(report.object_bytes)}, "
        "each checked by sha256",
    ]
    if report.replaced:
        held = ", ".join(f"{name} {rows}" for name, rows in report.replaced.items())
        lines.append(f"  replaced what the database held before (--force): {held}")
    if report.missing:
        lines.append(
            f"  missing  {len(report.missing)} stored files were already missing when the "
            "backup was taken (their rows are restored, their files are not):"
        )
        lines += [f"           {m.key} ({m.table} #{m.row_id} {m.column})" for m in report.missing]
    return "\n".join(lines)


async def _list(args: argparse.Namespace, cli: Cli) -> int:
    where, backups = await catalogue(cli.settings)
    if args.json:
        cli.print_json({"location": where, "backups": [b.as_json() for b in backups]})
        return EXIT_OK
    if not backups:
        cli.print(f"no backups in {where} yet.")
        return EXIT_OK
    rows = [
        [
            b.name,
            b.created_at[:19].replace("T", " ") if b.complete else "incomplete",
            str(b.rows) if b.complete else "",
            str(b.objects) if b.complete else "",
            str(b.missing) if b.missing else "",
        ]
        for b in backups
    ]
    cli.print(f"backups in {where} (oldest first):")
    cli.print(table(rows, ["NAME", "TAKEN (UTC)", "ROWS", "FILES", "MISSING"]))
    return EXIT_OK
