"""TUI figures: cold start to the first screen, and opening Runs / Issues on a big database.

* cold start: a fresh interpreter builds the app and shows the sign-in screen (headless, 80×24);
  measured from before the process is spawned to the first screen being mounted, median of 5.
* open: with 100,000 runs and 10,000 incidents (Core insert executemany), the time from the key
  press to the first page being on screen (the load worker finished and the table filled),
  median of 7 after one warm-up, on SQLite and (when reachable) PostgreSQL.

* switch (#13): every main screen, first visit of the session included, from the key's action
  to its data drawn (Home's tiles filled, the table's first page in), no worker still running.

Baselines measured in the same run: a bare `python -c pass` start, and the service call alone.
Goals: cold start < 1 s, open < 150 ms, any screen switch <= 100 ms.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from batchops_core.enums import (
    IncidentStatus,
    ProcessMode,
    Role,
    RunKind,
    RunStatus,
    Severity,
    Stage,
    UploadStatus,
)
from batchops_core.infra.config import RedisSettings, Settings, SmtpSettings
from batchops_core.infra.db import Database, open_database
from batchops_core.infra.migrate import upgrade
from batchops_core.models import Incident, JobRun, Upload

RUNS = 100_000
INCIDENTS = 10_000
UPLOADS = 20_000
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
PASSWORD = "bench-password-123"
PG_ADMIN = os.environ.get(
    "BATCHOPS_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)

COLD_CHILD = """
import time, sys
t_import = time.time()
import asyncio
from batchops_core.infra.config import Settings, RedisSettings, SmtpSettings
from batchops_tui.app import BatchOpsApp
t_imported = time.time()
async def main():
    settings = Settings(data_dir=sys.argv[1], redis=RedisSettings(url=""), smtp=SmtpSettings())
    app = BatchOpsApp(settings)
    async with app.run_test(size=(80, 24)) as pilot:
        while type(app.screen).__name__ != "SignInScreen":
            await pilot.pause(0.001)
        print(t_import, t_imported, time.time(), flush=True)
asyncio.run(main())
"""


def median_ms(values: list[float]) -> str:
    low, high = min(values) * 1000, max(values) * 1000
    return f"{statistics.median(values) * 1000:7.1f} ms (min {low:.1f}, max {high:.1f})"


def cold_start(data_dir: str) -> None:
    bare = []
    for _ in range(5):
        t0 = time.time()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.time() - t0)
    total, imports = [], []
    for _ in range(5):
        t0 = time.time()
        out = subprocess.run(
            [sys.executable, "-c", COLD_CHILD, data_dir], capture_output=True, text=True, check=True
        ).stdout.split()
        t_import, t_imported, t_shown = map(float, out[-3:])
        total.append(t_shown - t0)
        imports.append(t_imported - t_import)
    print(f"bare interpreter start        {median_ms(bare)}")
    print(f"import app modules            {median_ms(imports)}")
    print(f"cold start to sign-in screen  {median_ms(total)}   goal < 1000 ms")


async def bulk_seed(db: Database, settings: Settings) -> int:
    """Insert the big tables with Core executemany in batches; return the moderator's id."""
    from batchops_core.accounts import create_user
    from batchops_core.permissions import SYSTEM

    rng = random.Random(7)
    async with db.unit() as session:
        user = await create_user(
            session,
            actor=SYSTEM,
            username="mod",
            email="mod@school.example",
            role=Role.MODERATOR,
            password=PASSWORD,
            policy=settings.security,
            verified=True,
        )
    started = time.perf_counter()
    async with db.unit() as session:
        uploads = [
            {
                "filename": f"file-{i:05d}.csv",
                "sha256": f"{i:064x}",
                "source": "manual",
                "status": UploadStatus.PUBLISHED,
                "process_mode": ProcessMode.TRANSFORM,
                "process_config": {},
                "created_at": NOW - timedelta(minutes=i),
                "updated_at": NOW - timedelta(minutes=i),
                "size_bytes": 1000,
            }
            for i in range(UPLOADS)
        ]
        for chunk in range(0, UPLOADS, 5_000):
            await session.execute(insert(Upload), uploads[chunk : chunk + 5_000])
    async with db.unit() as session:
        batch = []
        for i in range(RUNS):
            status = RunStatus.FAILED if rng.random() < 0.1 else RunStatus.SUCCEEDED
            created = NOW - timedelta(minutes=i * 1.5)
            pipeline = i % 3 != 0
            batch.append(
                {
                    "kind": RunKind.PIPELINE if pipeline else RunKind.AUTOMATION,
                    "task": "process_upload" if pipeline else "run_daily_backup",
                    "upload_id": (i % UPLOADS) + 1 if pipeline else None,
                    "status": status,
                    "attempt": 1,
                    "created_at": created,
                    "started_at": created,
                    "finished_at": created + timedelta(seconds=4),
                    "rows_in": 100,
                    "rows_out": 98,
                    "log": [],
                }
            )
            if len(batch) == 10_000:
                await session.execute(insert(JobRun), batch)
                batch = []
    async with db.unit() as session:
        incidents = [
            {
                "title": f"fees: CODE{i % 40} at validate",
                "source": "fees",
                "stage": Stage.VALIDATE,
                "error_code": f"CODE{i % 40}",
                "message": "something is wrong",
                "severity": list(Severity)[i % 4],
                "status": list(IncidentStatus)[i % 4],
                "fingerprint": f"fp{i}",
                "created_at": NOW - timedelta(minutes=10 * i),
                "last_seen_at": NOW - timedelta(minutes=10 * i),
                "updated_at": NOW - timedelta(minutes=10 * i),
                "details": {},
                "assignee_id": user.id if i % 5 == 0 else None,
            }
            for i in range(INCIDENTS)
        ]
        for chunk in range(0, INCIDENTS, 5_000):
            await session.execute(insert(Incident), incidents[chunk : chunk + 5_000])
    took = time.perf_counter() - started
    print(f"seeded {UPLOADS:,} uploads, {RUNS:,} runs, {INCIDENTS:,} incidents in {took:.1f} s")
    if db.is_sqlite:
        async with db.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    else:
        async with db.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE"))
    return user.id


async def open_screens(settings: Settings, label: str) -> None:
    from batchops_core.permissions import Actor
    from batchops_core.services.incidents import list_incidents
    from batchops_core.services.runs import list_runs

    db = open_database(settings)
    actor = None
    for name, fn in (("list_runs", list_runs), ("list_incidents", list_incidents)):
        times = []
        for _ in range(8):
            async with db.unit() as session:
                if actor is None:
                    from sqlalchemy import select

                    from batchops_core.models import User

                    uid = await session.scalar(select(User.id).where(User.username == "mod"))
                    actor = Actor(id=uid, username="mod", role=Role.MODERATOR)
                t0 = time.perf_counter()
                await fn(session, actor=actor, limit=50)
                times.append(time.perf_counter() - t0)
        print(f"[{label}] service {name:<15}     {median_ms(times[1:])}")

    await measure_screens(settings, db, label)
    await measure_switches(settings, db, label)
    await db.dispose()


def _loading(app: Any) -> bool:
    """A load still running (the intake tree's directory loader lives as long as the tree)."""
    from textual.worker import WorkerState

    running = (WorkerState.PENDING, WorkerState.RUNNING)
    return any(w.state in running and w.group != "_loader" for w in app.workers)


def _idle(app: Any) -> bool:
    return not _loading(app)


def _page_shown(app: Any, screen: str) -> bool:
    from batchops_tui.widgets.common.paged_table import PagedTable

    return (
        type(app.screen).__name__ == screen
        and bool(app.screen.query(PagedTable))
        and app.screen.query_one(PagedTable).table.row_count > 0
        and _idle(app)
    )


async def open_and_wait(app: Any, mode: str, screen: str) -> float:
    """Run the key's own action (no pilot pauses) and wait for the first page to be shown."""
    trace = os.environ.get("BENCH_TUI_TRACE")
    t0 = time.perf_counter()
    await app.run_action(f"goto('{mode}')")
    if trace:
        print(f"  switched {1000 * (time.perf_counter() - t0):.1f} ms")
    while not _page_shown(app, screen):
        if time.perf_counter() - t0 > 30:
            raise RuntimeError(f"{screen} showed no rows within 30 s")
        await asyncio.sleep(0.001)
    took = time.perf_counter() - t0
    if trace:
        print(f"  rows shown after {1000 * took:.1f} ms")
    return took


async def go_home(app: Any, pilot: Any) -> None:
    await pilot.press("1")
    while app.current_mode != "home":
        await pilot.pause(0.005)


async def measure_screens(settings: Settings, db: Database, label: str) -> None:
    from batchops_core.signin import sign_in
    from batchops_tui.app import BatchOpsApp
    from batchops_tui.widgets.common.paged_table import PagedTable

    app = BatchOpsApp(settings, db=db, clock=lambda: NOW, live=False)
    async with app.run_test(size=(160, 48)) as pilot:
        app.signed_in(await sign_in(db, settings, username="mod", password=PASSWORD))
        while app.current_mode != "home" or not (app.screens_ready and _idle(app)):
            await pilot.pause(0.01)  # Home's load, the warm-up imports, the screens built
        for mode, screen in (("runs", "RunsScreen"), ("issues", "IssuesScreen")):
            first = await open_and_wait(app, mode, screen)
            await go_home(app, pilot)
            again = []
            for _ in range(7):
                again.append(await open_and_wait(app, mode, screen))
                app.screen.query_one(PagedTable).table.clear()  # so the next visit must reload
                app.screen.stale = True  # type: ignore[attr-defined]
                await go_home(app, pilot)
            print(
                f"[{label}] open {screen:<15} first {first * 1000:6.1f} ms; "
                f"again {median_ms(again)}   goal < 150 ms"
            )


SWITCHES = (
    ("intake", "IntakeScreen"),
    ("runs", "RunsScreen"),
    ("issues", "IssuesScreen"),
    ("reports", "ReportsScreen"),
    ("schedules", "SchedulesScreen"),
    ("home", "HomeScreen"),
)


def _drawn(app: Any, screen: str) -> bool:
    """The screen is current, its data is in its widgets and nothing is still loading."""
    from batchops_tui.widgets.common.paged_table import PagedTable

    if type(app.screen).__name__ != screen or _loading(app):
        return False
    if screen == "HomeScreen":
        return str(app.screen.query_one("#kpi-today .kpi-value").render()) != "…"
    tables = app.screen.query(PagedTable)
    if not tables:
        return False
    table = tables.first()  # its page is in (a listing with no rows says so in the pager)
    return table.table.row_count > 0 or "loading" not in str(table.query_one(".pager").render())


def _blank(app: Any, mode: str) -> None:
    from batchops_tui.widgets.common.paged_table import PagedTable

    screen = app._screen_stacks[mode][0]
    if mode == "home":
        screen.query_one("#kpi-today .kpi-value").update("…")
        return
    table = screen.query(PagedTable).first()
    table.table.clear()
    table.query_one(".pager").update("loading…")


async def switch_and_wait(app: Any, mode: str, screen: str) -> float:
    t0 = time.perf_counter()
    await app.run_action(f"goto('{mode}')")
    while not _drawn(app, screen):
        if time.perf_counter() - t0 > 30:
            raise RuntimeError(f"{screen} drew no data within 30 s")
        await asyncio.sleep(0.001)
    return time.perf_counter() - t0


async def measure_switches(settings: Settings, db: Database, label: str) -> None:
    """Every screen switch, first visits included, at 80×24 (the operator's SSH terminal)."""
    from batchops_core.signin import sign_in
    from batchops_tui.app import BatchOpsApp

    app = BatchOpsApp(settings, db=db, clock=lambda: NOW, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.signed_in(await sign_in(db, settings, username="mod", password=PASSWORD))
        built = time.perf_counter()
        while app.current_mode != "home" or not (app.screens_ready and not _loading(app)):
            await pilot.pause(0.01)
        print(f"[{label}] screens built behind Home in {time.perf_counter() - built:.2f} s")
        first = {screen: await switch_and_wait(app, mode, screen) for mode, screen in SWITCHES}
        changed: dict[str, list[float]] = {screen: [] for _, screen in SWITCHES}
        on_show: dict[str, list[float]] = {screen: [] for _, screen in SWITCHES}
        from batchops_core.infra.events import Event
        from batchops_tui.screens.base import HIDDEN_REFRESH_SECONDS

        for _ in range(5):
            for mode, screen in SWITCHES:
                # Data changed (an event or the poll): hidden screens look again by themselves.
                app.data_changed.publish(Event(type="poll"))
                await asyncio.sleep(HIDDEN_REFRESH_SECONDS + 0.05)
                while _loading(app):
                    await asyncio.sleep(0.001)
                changed[screen].append(await switch_and_wait(app, mode, screen))
        for _ in range(5):
            for mode, screen in SWITCHES:
                # Worst case: the change arrived just before the switch, the screen must reload.
                _blank(app, mode)
                app._screen_stacks[mode][0].stale = True
                on_show[screen].append(await switch_and_wait(app, mode, screen))
    worst = max(max(first.values()), *(max(v) for v in changed.values()))
    for _, screen in SWITCHES:
        print(
            f"[{label}] switch to {screen:<16} first {first[screen] * 1000:6.1f} ms; "
            f"after a change {median_ms(changed[screen])}; "
            f"reload on show {statistics.median(on_show[screen]) * 1000:6.1f} ms"
        )
    verdict = "ok" if worst <= 0.1 else "over"
    print(
        f"[{label}] slowest switch (first visits and after changes) {worst * 1000:.1f} ms   "
        f"goal <= 100 ms ({verdict})"
    )


async def with_database(url: str, label: str, base: Settings) -> None:
    settings = dataclasses.replace(base, database=dataclasses.replace(base.database, url=url))
    db = open_database(settings)
    try:
        await upgrade(db)
        await bulk_seed(db, settings)
    finally:
        await db.dispose()
    await open_screens(settings, label)


async def postgres_url() -> tuple[str, str] | None:
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"bo_bench_tui_{os.getpid()}"
    engine = create_async_engine(
        PG_ADMIN, isolation_level="AUTOCOMMIT", connect_args={"timeout": 3}
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # PostgreSQL is optional for this figure
        print(f"PostgreSQL skipped: {exc}")
        return None
    finally:
        await engine.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", name


async def drop_pg(name: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        base = Settings(data_dir=tmp, redis=RedisSettings(url=""), smtp=SmtpSettings(host=""))
        quick = os.environ.get("BENCH_TUI_QUICK") == "1"  # SQLite open figures only
        if not quick:
            cold_start(tmp)
        asyncio.run(with_database(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", "sqlite", base))
        pg = None if quick else asyncio.run(postgres_url())
        if pg is not None:
            try:
                asyncio.run(with_database(pg[0], "postgresql", base))
            finally:
                asyncio.run(drop_pg(pg[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
