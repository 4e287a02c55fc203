"""Where the queue lives on Redis: its name (per deployment prefix) and arq's connection."""

from __future__ import annotations

from arq.connections import RedisSettings

from batchops_core.infra.config import Settings


def queue_name(settings: Settings) -> str:
    return f"{settings.redis.prefix}:queue"


def arq_redis_settings(settings: Settings) -> RedisSettings:
    redis = RedisSettings.from_dsn(settings.redis.url)
    redis.conn_timeout = max(1, int(settings.redis.connect_timeout))
    redis.conn_retries = 1
    return redis
