"""Health checks of a deployment: configuration, database, Redis, storage, SMTP, and on a
working database this host's clock and which hosts run a live daemon.

Each check returns one verdict line; `required` checks decide the exit status of `batchops doctor`.
Every network check has a short timeout so a missing service gives a message, not a hang.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum

from batchops_core.errors import BatchOpsError
from batchops_core.infra.config import Settings
from batchops_core.infra.db import open_database
from batchops_core.infra.migrate import current_revision, ensure_current
from batchops_core.services.status import alive_hosts, host_clock, probe_store
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


async def check_storage(settings: Settings) -> Check:
    probe = await probe_store(settings)
    detail = probe.message if probe.url in probe.message else f"{probe.url}: {probe.message}"
    if probe.ok:
        return Check("storage", Verdict.OK, detail)
    hint = f". {probe.hint}" if probe.hint else ""
    return Check("storage", Verdict.FAIL, f"{detail}{hint}")


async def check_campus(settings: Settings) -> list[Check]:
    """This host's clock skew and the hosts whose daemons are alive (database time); neither is
    required: decisions use the database's clock, and the embedded mode runs no daemon."""
    db = open_database(settings)
    try:
        async with db.unit() as session:
            clock = await host_clock(session, settings)
            hosts = await alive_hosts(session, settings)
    except Exception as exc:  # the database check above already failed or will say why
        return [Check("clock", Verdict.WARN, f"not measured: {exc}", False)]
    finally:
        await db.dispose()
    checks = [Check("clock", Verdict.WARN if clock.skewed else Verdict.OK, clock.sentence(), False)]
    if not hosts:
        checks.append(
            Check("daemons", Verdict.WARN, "none alive on any host: start batchops-daemon", False)
        )
    for h in hosts:
        names = ", ".join(h.workers)
        checks.append(
            Check(
                "daemons",
                Verdict.OK,
                f"{h.host}: {names} (last beat {h.last_beat_seconds:.0f} s ago)",
            )
        )
    return checks


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
    db, redis, storage, smtp = await asyncio.gather(
        check_database(settings),
        check_redis(settings),
        check_storage(settings),
        check_smtp(settings),
    )
    campus = await check_campus(settings) if db.verdict is Verdict.OK else []
    return [config, db, redis, storage, smtp, *campus]
