"""`batchops-daemon --check` and the start-up checks that turn a missing service into a sentence.

Health is judged on BatchOps' own per-worker heartbeats (database rows, and Redis keys with a
TTL), never on arq's shared health key, which any stopping worker deletes (arq #291).
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from batchops_core.errors import BatchOpsError, DatabaseUnavailable
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.infra.migrate import ensure_current


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
