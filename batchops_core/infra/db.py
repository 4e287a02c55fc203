"""Async engine and session factory for `sqlite+aiosqlite` (embedded) or `postgresql+asyncpg`.

SQLite gets WAL, a busy timeout and foreign keys on every connection so that the TUI, the embedded
worker and the CLI can share one file. Connection failures become `DatabaseUnavailable` with one
sentence that names the database, never a driver traceback.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
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

from batchops_core.errors import DatabaseUnavailable
from batchops_core.infra.config import Settings

SQLITE_BUSY_TIMEOUT_MS = 10_000


@dataclass
class Database:
    """The engine and the session factory of one configured database."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    url: URL

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def display_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

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
        kwargs["connect_args"] = {"timeout": settings.database.connect_timeout}
    engine = create_async_engine(parsed, **kwargs)
    if backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    return Database(engine=engine, sessions=sessions, url=parsed)


__all__ = ["Database", "OperationalError", "open_database", "describe_connection_error"]
