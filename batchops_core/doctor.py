"""Health checks of a deployment: configuration, database, Redis, storage, SMTP.

Each check returns one verdict line; `required` checks decide the exit status of `batchops doctor`.
Every network check has a short timeout so a missing service gives a message, not a hang.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from enum import StrEnum

from batchops_core.errors import BatchOpsError
from batchops_core.infra.config import Settings
from batchops_core.infra.db import open_database
from batchops_core.infra.migrate import current_revision, ensure_current
from batchops_core.worker.outages import redis_outage


class Verdict(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    name: str
    verdict: Verdict
    detail: str
    required: bool = True

    @property
    def failed(self) -> bool:
        return self.required and self.verdict is Verdict.FAIL


async def check_database(settings: Settings) -> Check:
    db = open_database(settings)
    try:
        await asyncio.wait_for(ensure_current(db), timeout=settings.database.connect_timeout + 5)
        return Check(
            "database", Verdict.OK, f"{db.display_url} at schema {await current_revision(db)}"
        )
    except BatchOpsError as exc:
        return Check("database", Verdict.FAIL, str(exc))
    except TimeoutError:
        return Check("database", Verdict.FAIL, f"{db.display_url} did not answer in time")
    finally:
        await db.dispose()


async def check_redis(settings: Settings) -> Check:
    if not settings.uses_redis:
        return Check(
            "redis", Verdict.WARN, "not configured: uploads run on the embedded worker", False
        )
    from redis.asyncio import Redis

    client = Redis.from_url(
        settings.redis.url, socket_connect_timeout=settings.redis.connect_timeout
    )
    try:
        await asyncio.wait_for(client.ping(), timeout=settings.redis.connect_timeout + 1)
        return Check(
            "redis", Verdict.OK, f"{settings.redis.url} answers (prefix {settings.redis.prefix})"
        )
    except Exception:  # any socket, protocol or timeout error is the verdict itself
        return Check(
            "redis", Verdict.FAIL, f"{settings.redis.url}: {await _redis_outage(settings)}"
        )
    finally:
        await client.aclose()


async def _redis_outage(settings: Settings) -> str:
    """ "Redis unreachable since 10:02:11 (…)": the start a daemon recorded in the audit log."""
    db = open_database(settings)
    try:
        return await redis_outage(db, settings) or "Redis unreachable"
    finally:
        await db.dispose()


def check_storage(settings: Settings) -> Check:
    root = settings.storage_path
    missing = [p for p in ("uploads", "exports", "work", "backups") if not (root / p).is_dir()]
    if missing:
        return Check(
            "storage", Verdict.FAIL, f"{root}: missing {', '.join(missing)}; run `batchops init`"
        )
    try:
        with tempfile.NamedTemporaryFile(dir=root / "uploads"):
            pass
    except OSError as exc:
        return Check("storage", Verdict.FAIL, f"{root} is not writable: {exc.strerror}")
    return Check("storage", Verdict.OK, f"{root} is writable")


async def check_smtp(settings: Settings) -> Check:
    smtp = settings.smtp
    if not smtp.host:
        return Check(
            "smtp",
            Verdict.WARN,
            "not configured: verification and reset codes cannot be sent",
            False,
        )
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(smtp.host, smtp.port), smtp.timeout
        )
        writer.close()
        await writer.wait_closed()
    except (OSError, TimeoutError) as exc:
        return Check(
            "smtp", Verdict.FAIL, f"{smtp.host}:{smtp.port} unreachable: {exc or 'timeout'}"
        )
    return Check(
        "smtp", Verdict.OK, f"{smtp.host}:{smtp.port} accepts connections ({smtp.security})"
    )


async def run_checks(settings: Settings) -> list[Check]:
    config = Check(
        "config", Verdict.OK, f"read from {settings.source}; data in {settings.data_path}"
    )
    db, redis, smtp = await asyncio.gather(
        check_database(settings), check_redis(settings), check_smtp(settings)
    )
    return [config, db, redis, check_storage(settings), smtp]
