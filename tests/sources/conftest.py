"""Sources fixtures: external systems that are real — a SQLite log file and a PostgreSQL table.

`external_sqlite` is a file database holding `punch_log(id, emp_no, punched_at, device)`;
`external_pg` the same table in a private PostgreSQL database (skipped when PostgreSQL is down,
failed under BATCHOPS_REQUIRE_SERVICES=1, like the `db` fixture).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PG_ADMIN_URL, _admin_exec, _pg_url, _unavailable

START = datetime(2026, 11, 30, 7, 0, 0)

PUNCH_TABLE = (
    "CREATE TABLE punch_log (id INTEGER PRIMARY KEY, emp_no TEXT NOT NULL, "
    "punched_at TIMESTAMP NOT NULL, device TEXT)"
)


def punch_rows(first: int, count: int) -> list[tuple[int, str, str, str]]:
    """Rows `first`..`first+count-1`, 100 punches a day from START."""
    return [
        (
            i,
            f"E{i % 37:03d}",
            (START + timedelta(days=(i - 1) // 100, seconds=i)).isoformat(sep=" "),
            f"gate-{i % 3}",
        )
        for i in range(first, first + count)
    ]


def add_sqlite_rows(path: Path, first: int, count: int) -> None:
    with sqlite3.connect(path) as conn:
        conn.executemany("INSERT INTO punch_log VALUES (?, ?, ?, ?)", punch_rows(first, count))


@pytest.fixture
def external_sqlite(tmp_path: Path) -> Path:
    path = tmp_path / "biometric.db"
    with sqlite3.connect(path) as conn:
        conn.execute(PUNCH_TABLE)
    add_sqlite_rows(path, 1, 250)
    return path


def sqlite_config(path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "url": f"sqlite:///{path}",
        "table": "punch_log",
        "id_column": "id",
        "timestamp_column": "punched_at",
        "columns": {"employee": "emp_no", "at": "punched_at", "device": "device"},
        "batch_size": 100,
        **extra,
    }


async def _pg_exec(
    url: str, statements: list[str], rows: list[tuple[Any, ...]] | None = None
) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        for statement in statements:
            await conn.execute(statement)
        if rows:
            await conn.executemany(
                "INSERT INTO punch_log VALUES ($1, $2, $3::timestamp, $4)",
                [(i, e, datetime.fromisoformat(t), d) for i, e, t, d in rows],
            )
    finally:
        await conn.close()


@pytest.fixture
def external_pg() -> Iterator[str]:
    """A plain `postgresql://` URL (no driver) of a private database holding punch_log."""
    name = f"bo_ext_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_admin_exec([f'CREATE DATABASE "{name}"']))
    except Exception as exc:
        _unavailable("PostgreSQL", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    url = _pg_url(name)
    asyncio.run(
        _pg_exec(
            url,
            [PUNCH_TABLE.replace("INTEGER PRIMARY KEY", "BIGINT PRIMARY KEY")],
            punch_rows(1, 250),
        )
    )
    yield url.replace("postgresql+asyncpg", "postgresql")
    asyncio.run(_admin_exec([f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)']))


assert PG_ADMIN_URL


async def wait_for(
    condition: Callable[[], Awaitable[Any]], *, timeout: float = 20.0, every: float = 0.05
) -> Any:
    """Poll an async condition until truthy; fail after `timeout` s (no bare sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value {value!r})")
        await asyncio.sleep(every)


@pytest.fixture(scope="session", autouse=True)
def _stop_pipeline_pool() -> Iterator[None]:
    """The pipeline's warm process pool outlives tests; stop it once at the end."""
    yield
    from batchops_core.pipeline.pool import shutdown_pool

    shutdown_pool()


class FileServer:
    """A real local HTTP server (http.server in a thread) answering from a routes table.

    A route's value is (status, body) or a list of them, served in turn (the last one repeats),
    which is how a flaky file answers 503 once and then its content.
    """

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.routes: dict[str, Any] = {}
        self.hits: dict[str, int] = {}
        self.times: list[float] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                server.times.append(time.monotonic())
                answer = server.routes.get(self.path, (404, b"not found"))
                if isinstance(answer, list):
                    answer = answer[min(server.hits[self.path], len(answer)) - 1]
                status, body = answer
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    server = FileServer()
    yield server
    server.close()
