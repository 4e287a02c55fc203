"""Outages of Redis or the database: said once by the daemon, and readable by `--check`, `status`
and `doctor` as "Redis unreachable since 10:02:11".

The daemon lives through an outage of any length (it waits and resumes); what it owes people is
one line when an outage starts, one when it ends, and the start time wherever health is read. The
record goes where the other side can still be reached: a Redis outage into the audit log (the
database is up), a database outage into the Redis key `<prefix>:outage:database`. A reader probes
the service itself, so a stale record never claims an outage that is over.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from redis.asyncio import Redis
from sqlalchemy import select

from batchops_core import audit
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import AuditLog
from batchops_core.permissions import SYSTEM

log = logging.getLogger(__name__)

REDIS_DOWN = "outage.redis.begin"
REDIS_UP = "outage.redis.end"


class Service(StrEnum):
    REDIS = "Redis"
    DATABASE = "database"


def clock(when: datetime) -> str:
    """`10:02:11` today, `2026-12-02 10:02:11` before (UTC, like the logs)."""
    if when.date() == utcnow().date():
        return when.strftime("%H:%M:%S")
    return when.strftime("%Y-%m-%d %H:%M:%S")


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def outage_key(settings: Settings) -> str:
    return f"{settings.redis.prefix}:outage:database"


@dataclass
class OutageLog:
    """The daemon's view: when each service went away, said once, recorded for readers."""

    settings: Settings
    db: Database
    redis: Redis | None = None
    redis_since: datetime | None = None
    database_since: datetime | None = None

    async def down(self, service: Service, exc: BaseException) -> bool:
        """Note an outage; True only for the first report of this outage."""
        if self.since(service) is not None:
            return False
        now = utcnow()
        log.error(
            "%s unreachable since %s: %s; waiting for it (nothing queued is lost)",
            service.value,
            clock(now),
            _first_line(exc),
        )
        if service is Service.REDIS:
            self.redis_since = now
            await self._audit(REDIS_DOWN, f"since {now.isoformat()}: {_first_line(exc)}")
        else:
            self.database_since = now
            await self._redis_call("set", outage_key(self.settings), now.isoformat())
        return True

    async def up(self, service: Service) -> bool:
        """Note the end of an outage; True when one was going on."""
        since = self.since(service)
        if since is None:
            return False
        seconds = (utcnow() - since).total_seconds()
        log.warning("%s reachable again after %.0f s; resuming", service.value, seconds)
        if service is Service.REDIS:
            self.redis_since = None
            await self._audit(REDIS_UP, f"after {seconds:.0f} s")
        else:
            self.database_since = None
            await self._redis_call("delete", outage_key(self.settings))
        return True

    def since(self, service: Service) -> datetime | None:
        return self.redis_since if service is Service.REDIS else self.database_since

    async def _audit(self, action: str, detail: str) -> None:
        try:
            async with self.db.unit() as session:
                audit.record(
                    session,
                    actor=SYSTEM,
                    action=action,
                    target_type="service",
                    target_name=Service.REDIS.value,
                    detail=detail,
                )
        except Exception as exc:  # the database may be down too: the log line stands
            log.info("outage not recorded in the audit log: %s", _first_line(exc))

    async def _redis_call(self, name: str, *args: str) -> None:
        if self.redis is None:
            return
        try:
            await getattr(self.redis, name)(*args)
        except Exception as exc:
            log.info("outage not recorded in Redis: %s", _first_line(exc))


async def _redis_down_since(db: Database) -> datetime | None:
    try:
        async with db.unit() as session:
            row = (
                await session.execute(
                    select(AuditLog.action, AuditLog.created_at)
                    .where(AuditLog.action.in_([REDIS_DOWN, REDIS_UP]))
                    .order_by(AuditLog.id.desc())
                    .limit(1)
                )
            ).first()
    except Exception:
        return None
    return row[1] if row is not None and row[0] == REDIS_DOWN else None


async def redis_outage(db: Database, settings: Settings) -> str | None:
    """ "Redis unreachable since 10:02:11" when Redis does not answer now, else None."""
    if not settings.uses_redis:
        return None
    timeout = settings.redis.connect_timeout
    client = Redis.from_url(
        settings.redis.url, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        await asyncio.wait_for(client.ping(), timeout=timeout + 1)
        return None
    except Exception as exc:
        since = await _redis_down_since(db)
        when = f"since {clock(since)}" if since else "now"
        return f"Redis unreachable {when} ({_first_line(exc)})"
    finally:
        await client.aclose()


async def database_outage_since(settings: Settings) -> datetime | None:
    """When a daemon saw the database go away (from Redis), or None."""
    if not settings.uses_redis:
        return None
    timeout = settings.redis.connect_timeout
    client = Redis.from_url(
        settings.redis.url, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        raw = await client.get(outage_key(settings))
    except Exception:
        return None
    finally:
        await client.aclose()
    try:
        return datetime.fromisoformat(raw.decode()) if raw else None
    except ValueError:
        return None
