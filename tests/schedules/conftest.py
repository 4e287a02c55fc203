"""`cli_env`: `batchops` commands run through `main([...])` on the test database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batchops_core.accounts import UserInfo
from batchops_core.enums import Role

Users = dict[Role, UserInfo]


@pytest.fixture
def cli_env(
    db_url: str, users: Users, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[pytest.MonkeyPatch]:
    """`main` on the test database (with one account per role), no Redis, no SMTP."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BATCHOPS_CONFIG", raising=False)
    for name in ("BATCHOPS_USER", "BATCHOPS_PASSWORD", "SSH_CONNECTION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("BATCHOPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BATCHOPS_DATABASE_URL", db_url)
    monkeypatch.setenv("BATCHOPS_REDIS_URL", "")
    monkeypatch.setenv("BATCHOPS_SMTP_HOST", "")
    yield monkeypatch
