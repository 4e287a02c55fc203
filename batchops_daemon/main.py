"""`batchops-daemon`: the worker under systemd, `--once` for scripts and CI, `--check` for health.

Exit status: 0 success (or a clean stop), 1 failure (a failed item, no live daemon on this host, an
unreachable database or Redis), 2 a configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from batchops_core.errors import BatchOpsError
from batchops_core.infra import events
from batchops_core.infra.config import Settings, load_settings
from batchops_core.infra.db import open_database
from batchops_core.infra.logs import log_to_stderr
from batchops_core.services.status import worker_health
from batchops_core.version import VersionAction
from batchops_daemon.health import check_database, check_redis
from batchops_daemon.instance import local_names
from batchops_daemon.once import run_once
from batchops_daemon.service import Daemon

log = logging.getLogger("batchops_daemon")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batchops-daemon",
        description="BatchOps worker: uploads, schedules, automation, sweeper, metrics.",
    )
    parser.add_argument("--config", help="path of config.toml (default: BATCHOPS_CONFIG, ...)")
    parser.add_argument("--version", action=VersionAction)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--once",
        action="store_true",
        help="process every queued upload and due schedule, then exit 0/1",
    )
    mode.add_argument(
        "--check",
        action="store_true",
        help="exit 0 when a daemon of this host beat within health_interval",
    )
    parser.add_argument(
        "--log-level",
        help="DEBUG, INFO, WARNING (default INFO for the worker, WARNING for --once and --check)",
    )
    return parser


async def _serve(settings: Settings) -> int:
    db = open_database(settings)
    try:
        await check_database(db, settings)
        if settings.uses_redis:
            await check_redis(settings)
        daemon = Daemon(settings, db, warm_pool=True)
        daemon.install_signal_handlers()
        if settings.uses_redis:
            log.info(
                "worker %s on Redis %s, database %s",
                daemon.name,
                settings.redis.url,
                db.display_url,
            )
            return await daemon.run_arq()
        log.info("worker %s without Redis (in-process), database %s", daemon.name, db.display_url)
        return await daemon.run_polling()
    finally:
        await events.close()
        await db.dispose()


async def _once(settings: Settings) -> int:
    db = open_database(settings)
    try:
        await check_database(db, settings)
        return await run_once(db, settings, lambda line: print(line, flush=True))
    finally:
        await events.close()
        await db.dispose()


async def _check(settings: Settings) -> int:
    """This host's daemons (by the names they left in the data directory), not any worker."""
    db = open_database(settings)
    try:
        health = await worker_health(db, settings, names=local_names(settings))
    finally:
        await db.dispose()
    print(("healthy: " if health.healthy else "unhealthy: ") + health.detail)
    return 0 if health.healthy else 1


def main(argv: Sequence[str] | None = None) -> int:
    # Files the daemon writes (database, storage, reports, backups, logs) are for its group only:
    # 0640 files in 0750 folders, whatever the shell's umask (the unit also sets UMask=0027).
    os.umask(0o027)
    args = build_parser().parse_args(argv)
    default = "WARNING" if args.once or args.check else "INFO"
    log_to_stderr(getattr(logging, str(args.log_level or default).upper(), logging.INFO))
    logging.getLogger("arq.worker").setLevel(logging.WARNING)
    try:
        settings = load_settings(Path(args.config) if args.config else None)
    except BatchOpsError as exc:
        print(f"batchops-daemon: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.check:
            return asyncio.run(_check(settings))
        if args.once:
            return asyncio.run(_once(settings))
        return asyncio.run(_serve(settings))
    except BatchOpsError as exc:
        print(f"batchops-daemon: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
