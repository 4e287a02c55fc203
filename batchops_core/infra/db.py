"""Async engine, session factory and the unit of work (SQLite/aiosqlite or PostgreSQL/asyncpg).

**The unit of work is the one door into the database.** `async with db.unit() as uow:` opens one
transaction; `uow` is an `AsyncSession` that also collects what must leave the process once the
data is durable: `uow.emit(event)` and `uow.after_commit(callback)` (an enqueue, a mail). They run
after COMMIT, in order, and never after a rollback, so a subscriber is never told to look at a row
that does not exist and a worker never receives an id its transaction did not commit. Services
emit their own events; callers (TUI, CLI, daemon) only open the unit, and so cannot forget one.

SQLite gets WAL, a busy timeout and foreign keys on every connection so that the TUI, the embedded
worker and the CLI can share one file. Connection failures become `DatabaseUnavailable` with one
sentence that names the database, never a driver traceback.
"""

from __future__ import annotations

import inspect
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from batchops_core.errors import DatabaseUnavailable, PermissionDenied
from batchops_core.infra import events
from batchops_core.infra.config import Settings

SQLITE_BUSY_TIMEOUT_MS = 10_000

log = logging.getLogger(__name__)

AfterCommit = Callable[[], Awaitable[object]]


class UnitOfWork(AsyncSession):
    """A session whose events and follow-up work are released only after its COMMIT."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pending_events: list[events.Event] = []
        self.pending_hooks: list[AfterCommit] = []
        self.undo: list[Callable[[], object]] = []
        self.settings: Settings = self.info["settings"]

    def emit(self, event: events.Event) -> None:
        """Publish `event` once this unit commits; dropped if it rolls back."""
        self.pending_events.append(event)

    def after_commit(self, callback: AfterCommit) -> None:
        """Await `callback()` once this unit commits (enqueue work, send mail)."""
        self.pending_hooks.append(callback)

    def on_rollback(self, callback: Callable[[], object]) -> None:
        """Call `callback()` (awaited if it returns an awaitable) if this unit rolls back: remove
        an object stored for a row that was never committed."""
        self.undo.append(callback)

    def discard_pending(self) -> None:
        self.pending_events.clear()
        self.pending_hooks.clear()
        self.undo.clear()

    async def rolled_back(self) -> None:
        undo = list(reversed(self.undo))
        self.discard_pending()
        for callback in undo:
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                log.warning("could not undo after a rollback: %s", exc)

    async def release(self, settings: Settings) -> None:
        """Publish the events, then run every hook; the first hook failure is raised after.

        The commit already happened and stands: the caller learns that the follow-up failed (a
        queue that is down), while the database stays the truth (a queued upload whose enqueue
        was lost is re-queued by the sweeper).
        """
        emitted, hooks = list(self.pending_events), list(self.pending_hooks)
        self.discard_pending()
        for change in emitted:
            await events.publish(settings, change)
        failure: Exception | None = None
        for hook in hooks:
            try:
                await hook()
            except Exception as exc:
                log.warning("after-commit work failed (the commit stands): %s", exc)
                failure = failure or exc
        if failure is not None:
            raise failure


@dataclass
class Database:
    """The engine and the session factory of one configured database."""

    engine: AsyncEngine
    sessions: async_sessionmaker[UnitOfWork]
    url: URL
    settings: Settings

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def display_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[UnitOfWork]:
        """One transaction: committed on success, rolled back on error; then its events leave."""
        async with self.sessions() as uow:
            try:
                async with uow.begin():
                    yield uow
            except BaseException as exc:
                await uow.rolled_back()
                if isinstance(exc, PermissionDenied):
                    await self._record_refusal(exc)
                raise
            await uow.release(self.settings)

    async def _record_refusal(self, refused: PermissionDenied) -> None:
        """Audit a refused action in a unit of its own (the refused one rolled back)."""
        actor, action = getattr(refused, "actor", None), getattr(refused, "action", None)
        if actor is None or action is None:
            return
        from batchops_core import audit  # audit imports models, which import this module

        try:
            async with self.sessions() as session, session.begin():
                audit.record(
                    session,
                    actor=actor,
                    action="permission.refused",
                    detail=f"may not {getattr(action, 'value', action)}",
                )
        except Exception as exc:  # the refusal itself must still reach the caller
            log.warning("could not audit a refused action: %s", exc)

    async def check(self) -> None:
        """Open one connection and run `SELECT 1`, or raise DatabaseUnavailable."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (TimeoutError, OSError, DBAPIError, socket.gaierror) as exc:
            raise DatabaseUnavailable(describe_connection_error(self.display_url, exc)) from None

    async def dispose(self) -> None:
        await self.engine.dispose()


def describe_connection_error(display_url: str, exc: BaseException) -> str:
    reason = getattr(exc, "orig", None) or exc
    detail = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
    return f"cannot connect to the database {display_url}: {detail}."


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def open_database(settings: Settings, url: str | None = None) -> Database:
    """Build (not connect) the engine for the configured or given URL."""
    parsed = make_url(url or settings.database_url)
    kwargs: dict[str, Any] = {"echo": settings.database.echo}
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    elif backend == "postgresql":
        kwargs["pool_pre_ping"] = True
        kwargs["pool_size"] = settings.database.pool_size
        kwargs["max_overflow"] = settings.database.max_overflow
        kwargs["connect_args"] = {"timeout": settings.database.connect_timeout}
    engine = create_async_engine(parsed, **kwargs)
    if backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    sessions = async_sessionmaker(
        engine, class_=UnitOfWork, expire_on_commit=False, info={"settings": settings}
    )
    return Database(engine=engine, sessions=sessions, url=parsed, settings=settings)


__all__ = [
    "Database",
    "OperationalError",
    "UnitOfWork",
    "describe_connection_error",
    "open_database",
]
