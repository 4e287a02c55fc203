"""`--json` prints timestamps in ISO 8601 with `T` and an offset, in every command that has it."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from batchops_core.enums import Role
from batchops_tui.cli.common import json_value
from batchops_tui.cli.main import main

PASSWORD = "lantern-harbour-9"
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?[+-]\d{2}:\d{2}$")
SPACED = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BATCHOPS_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("BATCHOPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BATCHOPS_DATABASE_URL", db_url)
    monkeypatch.setenv("BATCHOPS_REDIS_URL", "")
    monkeypatch.setenv("BATCHOPS_SMTP_HOST", "")
    yield


def run_json(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str
) -> Any:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def timestamps(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """(key, value) of every field named like a timestamp, anywhere in the document."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from timestamps(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from timestamps(item, key)
    elif key.endswith(("_at", "_until")) or key == "at":
        yield key, value


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


@pytest.mark.usefixtures("cli_env")
def test_every_json_timestamp_is_iso_8601_with_t(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    added = ["user", "add", "ada", "--role", "admin", "--email", "ada@school.example"]
    assert main([*added, "--password-stdin"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    documents = {
        "user list": run_json(capsys, monkeypatch, "user", "list", "--json"),
        "audit": run_json(capsys, monkeypatch, "audit", "--json"),
        "status": run_json(capsys, monkeypatch, "status", "--json"),
    }
    seen = 0
    for command, document in documents.items():
        for key, value in timestamps(document):
            if value is None:
                continue
            seen += 1
            assert isinstance(value, str) and ISO.match(value), (command, key, value)
            assert datetime.fromisoformat(value).utcoffset() is not None
        assert not [s for s in strings(document) if SPACED.search(s)], command
    assert seen >= 3  # created_at of the account, the audit entry, the status time


def test_json_value_of_the_types_json_lacks() -> None:
    naive = datetime(2026, 3, 2, 10, 0, 5)
    assert json_value(naive) == "2026-03-02T10:00:05+00:00"  # the database keeps UTC
    assert json_value(naive.replace(tzinfo=UTC)) == "2026-03-02T10:00:05+00:00"
    assert json_value(date(2026, 3, 2)) == "2026-03-02"
    assert json_value(Role.ADMIN) == "admin"
    assert json_value(Path("/x")) == "/x"
