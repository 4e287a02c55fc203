"""`batchops init / migrate / doctor` and the schema guard, run through `main([...])`.

Bad situations (no database yet, an unreachable PostgreSQL, a schema from a newer BatchOps) must
give one clear sentence and a non-zero exit, never a traceback, and change nothing.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from batchops_core import audit
from batchops_core.infra.config import Settings, load_settings
from batchops_core.infra.db import open_database
from batchops_core.infra.migrate import head_revision
from batchops_core.permissions import SYSTEM
from batchops_core.worker.outages import REDIS_DOWN
from batchops_tui.cli.main import main
from tests.mailserver import closed_port

FUTURE = "9999_from_the_future"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A fresh machine: no config file, an empty data directory, no Redis, no SMTP."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BATCHOPS_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("BATCHOPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BATCHOPS_DATABASE_URL", "")
    monkeypatch.setenv("BATCHOPS_REDIS_URL", "")
    monkeypatch.setenv("BATCHOPS_SMTP_HOST", "")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    yield monkeypatch


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_sentence(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("batchops: ")
    return lines[0]


async def _revision(url: str, new: str | None = None) -> str:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            if new is not None:
                await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": new})
            return str(await conn.scalar(text("SELECT version_num FROM alembic_version")))
    finally:
        await engine.dispose()


def test_fresh_machine_doctor_init_migrate(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "data" / "batchops.db"
    code, out, _ = run(capsys, "doctor")
    assert code == 1
    verdicts = {line.split()[1]: line.split()[0] for line in out.splitlines()}
    assert verdicts == {
        "config": "ok",
        "database": "FAIL",
        "redis": "warn",
        "storage": "FAIL",
        "smtp": "warn",
    }
    assert "run `batchops init`" in out and not database.exists()
    code, _, err = run(capsys, "user", "list")
    assert code == 1 and "run `batchops init`" in one_sentence(err) and not database.exists()

    code, out, err = run(capsys, "init", "--demo")
    assert (code, err) == (0, "")
    assert f"upgraded from empty to {head_revision()}" in out
    assert "demo account admin (admin)" in out
    assert all((tmp_path / "data" / "storage" / d).is_dir() for d in ("uploads", "exports"))
    code, out, _ = run(capsys, "migrate")
    assert code == 0 and f"is up to date (schema {head_revision()})" in out
    code, out, _ = run(capsys, "init", "--demo")  # idempotent
    assert code == 0 and "demo account admin already exists." in out
    code, out, _ = run(capsys, "doctor")
    assert code == 0 and "FAIL" not in out
    code, out, _ = run(capsys, "user", "list", "--json")
    assert {u["username"] for u in json.loads(out)} == {"admin", "moderator", "operator"}


@pytest.mark.parametrize(
    "argv",
    [
        ("migrate",),
        ("init",),
        ("user", "list"),
        ("audit",),
        ("account", "verify", "x", "--code", "1"),
    ],
)
def test_unreachable_postgresql(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    port = closed_port()
    env.setenv("BATCHOPS_DATABASE_URL", f"postgresql+asyncpg://postgres@127.0.0.1:{port}/batchops")
    env.setenv("BATCHOPS_DATABASE_CONNECT_TIMEOUT", "2")
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == ""
    sentence = one_sentence(err)
    assert (
        f"cannot connect to the database postgresql+asyncpg://postgres@127.0.0.1:{port}" in sentence
    )


def test_doctor_with_unreachable_postgresql(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv(
        "BATCHOPS_DATABASE_URL", f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/bo"
    )
    env.setenv("BATCHOPS_DATABASE_CONNECT_TIMEOUT", "2")
    code, out, err = run(capsys, "doctor")
    assert code == 1 and err == ""
    (line,) = [line for line in out.splitlines() if line.split()[1] == "database"]
    assert line.startswith("FAIL") and "cannot connect to the database" in line


def test_schema_from_a_newer_batchops(
    env: pytest.MonkeyPatch, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_revision(db_url, FUTURE))
    env.setenv("BATCHOPS_DATABASE_URL", db_url)
    for argv in (("migrate",), ("init",), ("user", "list")):
        code, out, err = run(capsys, *argv)
        assert code == 1
        sentence = one_sentence(err)
        assert f"schema revision {FUTURE}, which this BatchOps does not know" in sentence
        assert "Upgrade BatchOps" in sentence
    code, out, _ = run(capsys, "doctor")
    assert code == 1 and FUTURE in out
    assert asyncio.run(_revision(db_url)) == FUTURE  # nothing was changed


def test_schema_older_than_the_code(
    env: pytest.MonkeyPatch, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if head_revision() == "0001":
        pytest.skip("only one migration exists")
    asyncio.run(_revision(db_url, "0001"))
    env.setenv("BATCHOPS_DATABASE_URL", db_url)
    code, _, err = run(capsys, "user", "list")
    assert code == 1 and "is at schema 0001; run `batchops migrate`" in one_sentence(err)


def test_doctor_names_a_redis_outage_and_when_a_daemon_saw_it_start(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "init")[0] == 0
    env.setenv("BATCHOPS_REDIS_URL", f"redis://127.0.0.1:{closed_port()}/0")
    code, out, _ = run(capsys, "doctor")
    (line,) = [line for line in out.splitlines() if line.split()[1] == "redis"]
    assert code == 1 and line.startswith("FAIL") and "Redis unreachable now" in line
    settings = load_settings()
    asyncio.run(_record_outage_start(settings))
    code, out, _ = run(capsys, "doctor")
    (line,) = [line for line in out.splitlines() if line.split()[1] == "redis"]
    assert re.search(r"Redis unreachable since \d\d:\d\d:\d\d", line), line


async def _record_outage_start(settings: Settings) -> None:
    """What a daemon writes when Redis goes away (the database is still up)."""
    db = open_database(settings)
    try:
        async with db.unit() as uow:
            audit.record(uow, actor=SYSTEM, action=REDIS_DOWN, detail="Redis unreachable")
    finally:
        await db.dispose()
