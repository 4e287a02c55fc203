"""Events leave with the commit whoever calls: the CLI publishes what the TUI publishes."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from redis import Redis

from batchops_core.infra.config import Settings
from batchops_core.infra.db import open_database
from batchops_core.permissions import SYSTEM
from batchops_core.services.schedules import find_schedule, set_schedule_enabled
from tests.schedules.test_schedule_cli import run

NAME = "Nightly backup"


def _next_event(pubsub: Any, deadline: float) -> dict[str, Any]:
    while time.monotonic() < deadline:
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if message and message["type"] == "message":
            event = json.loads(message["data"])
            event.pop("at")
            return event
    raise AssertionError("no event on the channel within the deadline")


async def _toggle_as_the_tui_does(settings: Settings, enabled: bool) -> None:
    """What a screen's `self.call(service, …)` does: one unit of work around the service."""
    db = open_database(settings)
    try:
        async with db.unit() as uow:
            row = await find_schedule(uow, actor=SYSTEM, ref=NAME)
            await set_schedule_enabled(uow, actor=SYSTEM, job_id=row.id, enabled=enabled)
    finally:
        await db.dispose()


def test_cli_disable_publishes_the_event_the_tui_publishes(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], redis_settings: Settings
) -> None:
    cli_env.setenv("BATCHOPS_REDIS_URL", redis_settings.redis.url)
    cli_env.setenv("BATCHOPS_REDIS_PREFIX", redis_settings.redis.prefix)
    client = Redis.from_url(redis_settings.redis.url)
    pubsub = client.pubsub()
    pubsub.subscribe(f"{redis_settings.redis.prefix}:events")
    try:
        pubsub.get_message(timeout=1)  # the subscribe confirmation
        code, _, err = run(capsys, cli_env, "disable", NAME)
        assert code == 0, err
        from_cli = _next_event(pubsub, time.monotonic() + 10)
        asyncio.run(_toggle_as_the_tui_does(redis_settings, enabled=True))
        enabled_again = _next_event(pubsub, time.monotonic() + 10)
        asyncio.run(_toggle_as_the_tui_does(redis_settings, enabled=False))
        from_tui = _next_event(pubsub, time.monotonic() + 10)
    finally:
        pubsub.close()
        client.close()
    assert from_cli["type"] == "schedule.updated" and from_cli["status"] == "disabled"
    assert enabled_again == {**from_cli, "status": "enabled"}
    assert from_tui == from_cli


def test_a_rolled_back_change_publishes_nothing(redis_settings: Settings) -> None:
    async def scenario() -> None:
        db = open_database(redis_settings)
        try:
            with pytest.raises(RuntimeError):
                async with db.unit() as uow:
                    row = await find_schedule(uow, actor=SYSTEM, ref=NAME)
                    await set_schedule_enabled(uow, actor=SYSTEM, job_id=row.id, enabled=False)
                    raise RuntimeError("the caller fails after the service call")
            async with db.unit() as uow:
                assert (await find_schedule(uow, actor=SYSTEM, ref=NAME)).enabled
        finally:
            await db.dispose()

    client = Redis.from_url(redis_settings.redis.url)
    pubsub = client.pubsub()
    pubsub.subscribe(f"{redis_settings.redis.prefix}:events")
    try:
        pubsub.get_message(timeout=1)
        asyncio.run(scenario())
        assert pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0) is None
    finally:
        pubsub.close()
        client.close()
