"""Typed change events: "look again" signals, published on Redis and delivered in-process.

Every state change publishes one small JSON event on `<prefix>:events` (`batchops:events` by
default). Without Redis, subscribers in the same process still receive them, so the embedded
TUI + worker pair stays live. The database remains the truth; an event only says what changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from batchops_core.infra.batching import MicroBatch
from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    type: str
    """e.g. `upload.updated`, `run.updated`, `incident.updated`, `schedule.updated`,
    `worker.heartbeat`."""
    id: int | str | None = None
    status: str | None = None
    stage: str | None = None
    at: str = field(default_factory=lambda: utcnow().isoformat())
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        payload: dict[str, Any] = {"type": self.type}
        for key in ("id", "status", "stage"):
            value = getattr(self, key)
            if value is not None:
                payload[key] = value
        payload["at"] = self.at
        if self.data:
            payload["data"] = self.data
        return json.dumps(payload, separators=(",", ":"), default=str)

    @classmethod
    def from_json(cls, text: str | bytes) -> Event:
        raw = json.loads(text)
        known = {k: raw.pop(k) for k in ("type", "id", "status", "stage", "at") if k in raw}
        return cls(**known, data=raw.pop("data", {}) | raw)


def channel(settings: Settings) -> str:
    return f"{settings.redis.prefix}:events"


_local_queues: set[asyncio.Queue[Event]] = set()
LINGER = 0.0
"""Seconds an event waits for company; 0 still pipelines the events of one loop iteration
and, measured, keeps p50 latency lowest (bench/bench_events.py)."""


class _Publisher:
    """One Redis client per URL and event loop; events of one loop iteration share a pipeline."""

    def __init__(self, settings: Settings) -> None:
        self.client = Redis.from_url(
            settings.redis.url, socket_connect_timeout=settings.redis.connect_timeout
        )
        self.batch: MicroBatch[tuple[str, str], None] = MicroBatch(self._send, linger=LINGER)

    async def _send(self, items: list[tuple[str, str]]) -> list[None]:
        if len(items) == 1:
            await self.client.publish(*items[0])
        else:
            async with self.client.pipeline(transaction=False) as pipe:
                for name, payload in items:
                    pipe.publish(name, payload)
                await pipe.execute()
        return [None] * len(items)


_publishers: dict[tuple[str, int], _Publisher] = {}


def _publisher(settings: Settings) -> _Publisher:
    key = (settings.redis.url, id(asyncio.get_running_loop()))
    publisher = _publishers.get(key)
    if publisher is None:
        publisher = _publishers[key] = _Publisher(settings)
    return publisher


def _deliver_locally(event: Event) -> None:
    for queue in list(_local_queues):
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(event)


async def publish(settings: Settings, event: Event) -> None:
    """Deliver to in-process subscribers and, when configured, to Redis. Never raises."""
    _deliver_locally(event)
    if not settings.uses_redis:
        return
    try:
        await _publisher(settings).batch.submit((channel(settings), event.to_json()))
    except Exception as exc:  # an event is a hint; losing one must not fail the work
        log.warning("could not publish %s on Redis: %s", event.type, exc)


async def publish_all(settings: Settings, batch: Sequence[Event]) -> None:
    """Deliver several events in their order, sharing one Redis pipeline. Never raises.

    For changes committed together (the steps of a small upload, a run's end and its upload's):
    one round trip instead of one per event, and subscribers still see them in order, which
    separate `publish` calls running at once would not promise (each may take its own
    connection)."""
    for event in batch:
        _deliver_locally(event)
    if not settings.uses_redis or not batch:
        return
    try:
        publisher, name = _publisher(settings), channel(settings)
        await asyncio.gather(*(publisher.batch.submit_nowait((name, e.to_json())) for e in batch))
    except Exception as exc:
        log.warning("could not publish %d events on Redis: %s", len(batch), exc)


RECONNECTED = "events.reconnected"
"""Delivered after the Redis subscription was lost and re-established: events may have been
missed meanwhile, so a subscriber should reload what it shows."""


@asynccontextmanager
async def subscribe(settings: Settings) -> AsyncIterator[asyncio.Queue[Event]]:
    """A queue receiving every event: from Redis when configured, else from this process.

    A dropped Redis connection is re-established with backoff (up to 5 s between tries); the
    queue then receives an `events.reconnected` event. Events arriving faster than the
    subscriber reads them are dropped past 10,000 waiting, with a warning.
    """
    queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=10_000)
    if not settings.uses_redis:
        _local_queues.add(queue)
        try:
            yield queue
        finally:
            _local_queues.discard(queue)
        return
    client = Redis.from_url(
        settings.redis.url,
        socket_connect_timeout=settings.redis.connect_timeout,
        client_name=f"{settings.redis.prefix}:events",
    )
    pubsub = client.pubsub()
    await pubsub.subscribe(channel(settings))
    task = asyncio.create_task(_pump(settings, pubsub, queue))
    try:
        yield queue
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pubsub.aclose()
        await client.aclose()


async def _pump(settings: Settings, pubsub: PubSub, queue: asyncio.Queue[Event]) -> None:
    delay = 0.1
    while True:
        try:
            async for message in pubsub.listen():
                delay = 0.1
                if message.get("type") != "message":
                    continue
                try:
                    queue.put_nowait(Event.from_json(message["data"]))
                except (ValueError, TypeError):
                    log.warning("dropped an unreadable event")
                except asyncio.QueueFull:
                    log.warning("dropped an event: the subscriber is not keeping up")
        except (RedisError, OSError) as exc:
            log.warning("event subscription lost (%s); reconnecting in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(5.0, delay * 2)
            try:
                await pubsub.aclose()
                await pubsub.subscribe(channel(settings))
            except (RedisError, OSError):
                continue
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(Event(type=RECONNECTED))


async def close() -> None:
    """Close the shared publishing clients (call at process or test end)."""
    loop_id = id(asyncio.get_running_loop())
    for key in [k for k in _publishers if k[1] == loop_id]:
        await _publishers.pop(key).client.aclose()
