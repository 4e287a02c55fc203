"""TUI fixtures: a seeded SQLite database (the services have their own two-database tests),
an app factory with a frozen clock and no cursor blink, and a signed-in pilot helper."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from textual.pilot import Pilot
from textual.widgets import Input

from batchops_core.accounts import UserInfo
from batchops_core.enums import Role
from batchops_core.infra.config import Settings, TuiSettings
from batchops_core.infra.db import Database, open_database
from batchops_core.worker.dispatcher import Dispatcher
from batchops_tui.app import BatchOpsApp
from tests.tui.seed import NOW, PASSWORD, USERNAMES, seed_activity, seed_users

DEADLINE = 10.0
LONG_LIVED = {"live", "_loader"}
"""Worker groups that run for a widget's whole life (our event subscription, DirectoryTree)."""


@pytest.fixture(autouse=True)
def _no_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    """A blinking cursor makes screenshots differ run to run."""
    monkeypatch.setattr(Input, "cursor_blink", False)


@pytest.fixture
def tui_settings(settings: Settings, sqlite_url: str, tmp_path: Path) -> Settings:
    intake = tmp_path / "incoming"
    intake.mkdir()
    (intake / "grades.csv").write_text(
        "student_id,name,score\nS1,Ann,80\nS2,Bob,70\n", encoding="utf-8"
    )
    return dataclasses.replace(
        settings,
        export_dir=str(tmp_path / "exports"),
        database=dataclasses.replace(settings.database, url=sqlite_url),
        pipeline=dataclasses.replace(settings.pipeline, intake_root=str(intake)),
        tui=TuiSettings(poll_interval=3600, page_size=50),
    )


async def _seed(settings: Settings, activity: bool) -> dict[Role, UserInfo]:
    db = open_database(settings)
    try:
        users = await seed_users(db, settings)
        if activity:
            await seed_activity(db, settings, users)
        return users
    finally:
        await db.dispose()


@pytest.fixture
def seeded(tui_settings: Settings) -> dict[Role, UserInfo]:
    """Users and activity, written before the app (and its event loop) starts."""
    return asyncio.run(_seed(tui_settings, activity=True))


@pytest_asyncio.fixture
async def tui_db(tui_settings: Settings, seeded: dict[Role, UserInfo]) -> AsyncIterator[Database]:
    db = open_database(tui_settings)
    yield db
    await db.dispose()


@pytest.fixture
def make_app(tui_settings: Settings) -> Callable[..., BatchOpsApp]:
    def build(db: Database | None = None, **kwargs: Any) -> BatchOpsApp:
        kwargs.setdefault("clock", lambda: NOW)
        return BatchOpsApp(tui_settings, db=db, **kwargs)

    return build


async def wait_for(
    pilot: Pilot[Any], condition: Callable[[], bool], what: str = "condition"
) -> None:
    """Poll a condition with a bounded deadline (never a fixed sleep)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def sign_in(pilot: Pilot[Any], role: Role | str, password: str = PASSWORD) -> None:
    username = USERNAMES[role] if isinstance(role, Role) else role
    app = pilot.app
    await pilot.pause()
    app.screen.query_one("#username", Input).value = username
    app.screen.query_one("#password", Input).value = password
    await pilot.click("#signin")


async def signed_in(pilot: Pilot[Any], role: Role) -> None:
    await sign_in(pilot, role)
    await wait_for(pilot, lambda: pilot.app.current_mode == "home", "the Home screen")
    await settle(pilot)


async def settle(pilot: Pilot[Any]) -> None:
    """Let every worker finish and the screen repaint."""
    from textual.worker import WorkerState

    def idle() -> bool:
        return not [
            w
            for w in pilot.app.workers
            if w.group not in LONG_LIVED and w.state in (WorkerState.PENDING, WorkerState.RUNNING)
        ]

    await pilot.pause()
    await wait_for(pilot, idle, "workers to finish")
    await pilot.pause()


@pytest.fixture
def snapshot_users(tui_settings: Settings) -> Iterator[dict[Role, UserInfo]]:
    yield asyncio.run(_seed(tui_settings, activity=True))


@pytest_asyncio.fixture
async def queued_dispatcher(
    tui_db: Database, tui_settings: Settings, redis_url: str
) -> AsyncIterator[Dispatcher]:
    """A real arq dispatcher on a private Redis prefix: jobs are queued, not run, so a test sees
    the state an action leaves without a pipeline racing it."""
    import uuid

    from redis.asyncio import Redis

    from batchops_core.infra.config import RedisSettings

    prefix = f"bo-tui-{uuid.uuid4().hex[:10]}"
    settings = dataclasses.replace(tui_settings, redis=RedisSettings(url=redis_url, prefix=prefix))
    dispatcher = await Dispatcher.connect(tui_db, settings)
    yield dispatcher
    await dispatcher.close()
    client = Redis.from_url(redis_url)
    keys = [k async for k in client.scan_iter(f"*{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
