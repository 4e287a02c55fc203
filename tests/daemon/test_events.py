"""Events: JSON on Redis or in process, and a subscription that survives a dropped connection."""

from __future__ import annotations

import asyncio
import dataclasses

from redis.asyncio import Redis

from batchops_core.infra import events
from batchops_core.infra.config import Settings
from batchops_core.infra.events import Event
from tests.daemon.conftest import wait_for


async def _one_subscriber(admin: Redis, settings: Settings) -> None:
    """Wait until Redis counts exactly one subscriber on the events channel."""

    async def subscribed() -> bool:
        numsub = await admin.pubsub_numsub(events.channel(settings))
        return bool(numsub and numsub[0][1] == 1)

    await wait_for(subscribed, timeout=5)


def test_event_json_round_trip_keeps_unknown_fields() -> None:
    event = Event(
        type="upload.updated", id=12, status="processing", stage="validate", data={"rows": 3}
    )
    back = Event.from_json(event.to_json())
    assert back == event
    newer = Event.from_json('{"type": "x.y", "id": 1, "extra": true, "at": "t"}')
    assert newer.data == {"extra": True} and newer.at == "t"


async def test_in_process_subscribers_get_events(settings: Settings) -> None:
    async with events.subscribe(settings) as queue:
        await events.publish(settings, Event(type="run.updated", id=5, status="running"))
        got = await asyncio.wait_for(queue.get(), timeout=2)
    assert (got.type, got.id, got.status) == ("run.updated", 5, "running")


async def test_redis_subscription_survives_a_killed_connection(redis_settings: Settings) -> None:
    settings = redis_settings
    admin = Redis.from_url(settings.redis.url)
    try:
        async with events.subscribe(settings) as queue:
            await _one_subscriber(admin, settings)
            await events.publish(settings, Event(type="upload.updated", id=1))
            assert (await asyncio.wait_for(queue.get(), timeout=2)).id == 1

            name = f"{settings.redis.prefix}:events"
            killed = [c["id"] for c in await admin.client_list() if c.get("name") == name]
            assert killed, "the subscription names its connection"
            for client_id in killed:
                await admin.client_kill_filter(_id=client_id)
            reconnected = await asyncio.wait_for(queue.get(), timeout=10)
            assert reconnected.type == events.RECONNECTED
            await _one_subscriber(admin, settings)
            await events.publish(settings, Event(type="upload.updated", id=2))
            assert (await asyncio.wait_for(queue.get(), timeout=2)).id == 2
    finally:
        await admin.aclose()


async def test_publish_without_redis_reachable_does_not_raise(settings: Settings) -> None:
    down = dataclasses.replace(
        settings,
        redis=dataclasses.replace(settings.redis, url="redis://127.0.0.1:1/0", connect_timeout=0.5),
    )
    await events.publish(down, Event(type="run.updated", id=1))


async def test_publish_all_keeps_the_order_in_one_pipeline(redis_settings: Settings) -> None:
    settings = redis_settings
    admin = Redis.from_url(settings.redis.url)
    stages = ["standardize", "validate", "transform", "summarize", "publish"]
    try:
        async with events.subscribe(settings) as queue:
            await _one_subscriber(admin, settings)
            batch = events._publisher(settings).batch
            flushes = batch.flushes
            await events.publish_all(
                settings, [Event(type="upload.updated", id=7, stage=s) for s in stages]
            )
            assert batch.flushes == flushes + 1, "one pipeline for the five events"
            got = [await asyncio.wait_for(queue.get(), timeout=2) for _ in stages]
        assert [(e.id, e.stage) for e in got] == [(7, s) for s in stages]
    finally:
        await admin.aclose()
    down = dataclasses.replace(
        settings,
        redis=dataclasses.replace(settings.redis, url="redis://127.0.0.1:1/0", connect_timeout=0.5),
    )
    await events.publish_all(down, [Event(type="run.updated", id=1)])  # never raises
