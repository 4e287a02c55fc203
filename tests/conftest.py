"""Fixtures: a fresh SQLite file and PostgreSQL database per test; Redis on a private prefix.

Each database is cloned from a template migrated once per session (PostgreSQL `CREATE DATABASE …
TEMPLATE`, SQLite a file copy), so every test starts from the real migrations and seeds in
milliseconds. With BATCHOPS_REQUIRE_SERVICES=1 (CI) a missing PostgreSQL or Redis fails the test
instead of skipping it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from argon2 import PasswordHasher
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from batchops_core import passwords
from batchops_core.accounts import UserInfo, create_user
from batchops_core.enums import Role
from batchops_core.infra import events
from batchops_core.infra.config import RedisSettings, Settings, SmtpSettings
from batchops_core.infra.db import Database, open_database
from batchops_core.infra.migrate import upgrade
from batchops_core.permissions import SYSTEM

PG_ADMIN_URL = os.environ.get(
    "BATCHOPS_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("BATCHOPS_TEST_REDIS", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("BATCHOPS_REQUIRE_SERVICES") == "1"
TEST_PASSWORD = "correct-horse-battery"
_RUN_ID = uuid.uuid4().hex[:8]
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(autouse=True)
def fast_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters: the hash cost is not under test, and 0.4 s a hash adds up."""
    monkeypatch.setattr(passwords, "_hasher", FAST_HASHER)


def _unavailable(service: str, reason: str) -> None:
    message = f"{service} is not reachable ({reason})"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}; BATCHOPS_REQUIRE_SERVICES=1 forbids skipping", pytrace=False)
    pytest.skip(message)


def _base_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=str(tmp_path / "data"),
        redis=RedisSettings(url=""),
        smtp=SmtpSettings(host=""),
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings on a private data directory, SQLite, no Redis, no SMTP."""
    return _base_settings(tmp_path)


async def _admin_exec(statements: list[str]) -> None:
    engine = create_async_engine(
        PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"timeout": 3}
    )
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


def _pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


async def _migrate(settings: Settings, url: str) -> None:
    db = open_database(settings, url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    settings = _base_settings(path.parent)
    asyncio.run(_migrate(settings, f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """A migrated template database, or None (with the reason) when PostgreSQL is down."""
    name = f"bo_tpl_{_RUN_ID}"
    try:
        asyncio.run(_admin_exec([f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"']))
    except Exception as exc:  # any driver or socket error means "not reachable"
        pg_template.reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__  # type: ignore[attr-defined]
        yield None
        return
    asyncio.run(_migrate(_base_settings(tmp_path_factory.mktemp("pg")), _pg_url(name)))
    yield name
    asyncio.run(_admin_exec([f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)']))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """URL of a fresh, migrated, seeded database: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        target = tmp_path / "test.db"
        shutil.copyfile(sqlite_template, target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    template = request.getfixturevalue("pg_template")
    if template is None:
        _unavailable("PostgreSQL", getattr(pg_template, "reason", "connection failed"))
    name = f"bo_t_{_RUN_ID}_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin_exec([f'CREATE DATABASE "{name}" TEMPLATE "{template}"']))
    yield _pg_url(name)
    asyncio.run(_admin_exec([f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)']))


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh migrated SQLite database only (for tests about the embedded mode itself)."""
    target = tmp_path / "embedded.db"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture
def db_settings(settings: Settings, db_url: str) -> Settings:
    """Settings pointing at the fresh test database."""
    return dataclasses.replace(
        settings, database=dataclasses.replace(settings.database, url=db_url)
    )


@pytest_asyncio.fixture
async def db(db_settings: Settings) -> AsyncIterator[Database]:
    database = open_database(db_settings)
    yield database
    await database.dispose()


@pytest.fixture
def redis_url() -> str:
    """A reachable Redis URL, or skip (fail under BATCHOPS_REQUIRE_SERVICES=1)."""
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except RedisError as exc:
        _unavailable("Redis", str(exc))
    finally:
        client.close()
    return REDIS_URL


def forget_redis_prefix(redis_url: str, prefix: str) -> None:
    """Delete every Redis key a test's private prefix made (its own and arq's)."""
    client = Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(f"{prefix}*")) + list(client.scan_iter(f"arq:*{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def redis_settings(db_settings: Settings, redis_url: str) -> Iterator[Settings]:
    """db_settings plus Redis on a private key prefix, cleaned up after the test."""
    prefix = f"bo-test-{uuid.uuid4().hex[:12]}"
    yield dataclasses.replace(db_settings, redis=RedisSettings(url=redis_url, prefix=prefix))
    forget_redis_prefix(redis_url, prefix)


@pytest_asyncio.fixture(autouse=True)
async def _close_event_clients() -> AsyncIterator[None]:
    yield
    await events.close()


@pytest_asyncio.fixture
async def users(db: Database, db_settings: Settings) -> dict[Role, UserInfo]:
    """One verified account per role: admin, moderator, user (password TEST_PASSWORD)."""
    made: dict[Role, UserInfo] = {}
    async with db.unit() as session:
        for role in Role:
            made[role] = await create_user(
                session,
                actor=SYSTEM,
                username=f"{role.value}1",
                email=f"{role.value}1@school.example",
                role=role,
                password=TEST_PASSWORD,
                policy=db_settings.security,
                verified=True,
            )
    return made


@pytest.fixture
def cli_env(
    db_url: str, users: dict[Role, UserInfo], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[pytest.MonkeyPatch]:
    """`batchops` commands through `main([...])` on the test database (one account per role), no
    config file, no Redis, no SMTP, nobody signed in by the environment."""
    monkeypatch.chdir(tmp_path)
    for name in ("BATCHOPS_CONFIG", "BATCHOPS_USER", "BATCHOPS_PASSWORD", "SSH_CONNECTION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("BATCHOPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BATCHOPS_DATABASE_URL", db_url)
    monkeypatch.setenv("BATCHOPS_REDIS_URL", "")
    monkeypatch.setenv("BATCHOPS_SMTP_HOST", "")
    yield monkeypatch
