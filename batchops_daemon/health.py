"""`batchops-daemon --check` and the start-up checks that turn a missing service into a sentence.

Health is judged on BatchOps' own per-worker heartbeats (database rows, and Redis keys with a
TTL), never on arq's shared health key, which any stopping worker deletes (arq #291).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.asyncio import Redis
from sqlalchemy import select

from batchops_core.errors import BatchOpsError, DatabaseUnavailable
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.infra.migrate import ensure_current
from batchops_core.models import WorkerHeartbeat
from batchops_core.worker.heartbeat import redis_pattern


class RedisUnavailable(BatchOpsError):
    """The configured Redis cannot be reached."""


async def check_database(db: Database, settings: Settings) -> None:
    """Raise DatabaseUnavailable/SchemaTooNew with one sentence, within the connect timeout."""
    try:
        await asyncio.wait_for(ensure_current(db), timeout=settings.database.connect_timeout + 5)
    except TimeoutError:
        raise DatabaseUnavailable(
            f"the database {db.display_url} did not answer within "
            f"{settings.database.connect_timeout + 5:.0f} s; is it running?"
        ) from None


async def check_redis(settings: Settings) -> None:
    client = Redis.from_url(
        settings.redis.url,
        socket_connect_timeout=settings.redis.connect_timeout,
        socket_timeout=settings.redis.connect_timeout,
    )
    try:
        await asyncio.wait_for(client.ping(), timeout=settings.redis.connect_timeout + 1)
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RedisUnavailable(
            f"cannot connect to Redis at {settings.redis.url}: {detail}. Start Redis, fix "
            "[redis] url, or leave it empty to run without Redis."
        ) from None
    finally:
        await client.aclose()


@dataclass(frozen=True)
class Health:
    healthy: bool
    detail: str


async def check_health(db: Database, settings: Settings, now: datetime | None = None) -> Health:
    """Healthy when a (non-embedded) worker of this deployment beat within `health_interval`."""
    now = now or utcnow()
    window = settings.worker.health_interval
    cutoff = now - timedelta(seconds=window)
    try:
        async with db.unit() as session:
            rows = (
                await session.execute(
                    select(WorkerHeartbeat.name, WorkerHeartbeat.heartbeat_at)
                    .where(WorkerHeartbeat.embedded.is_(False))
                    .order_by(WorkerHeartbeat.heartbeat_at.desc())
                )
            ).all()
    except Exception as exc:
        if settings.uses_redis:
            return await _check_redis_keys(settings, str(exc))
        return Health(False, f"cannot read worker heartbeats: {exc}")
    alive = [(n, t) for n, t in rows if t >= cutoff]
    if alive:
        name, when = alive[0]
        age = (now - when).total_seconds()
        return Health(True, f"{len(alive)} worker(s) alive; {name} beat {age:.0f} s ago")
    if rows:
        name, when = rows[0]
        age = (now - when).total_seconds()
        return Health(False, f"no worker beat within {window} s; last was {name} {age:.0f} s ago")
    return Health(False, "no daemon worker is running (no heartbeat): start batchops-daemon.")


async def _check_redis_keys(settings: Settings, why: str) -> Health:
    client = Redis.from_url(
        settings.redis.url, socket_connect_timeout=settings.redis.connect_timeout
    )
    try:
        keys = [k async for k in client.scan_iter(match=redis_pattern(settings), count=100)]
    except Exception as exc:
        return Health(False, f"database unreadable ({why}) and Redis too ({exc})")
    finally:
        await client.aclose()
    if keys:
        return Health(True, f"{len(keys)} worker key(s) alive in Redis (database unreadable)")
    return Health(False, f"no worker key in Redis; database unreadable ({why})")
