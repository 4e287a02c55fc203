"""`batchops doctor` on a campus (#15): the object store probed on a real S3 server (moto), and
the hosts whose daemons are alive, grouped by host on the database's clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from batchops_core.infra.config import Settings
from batchops_core.infra.db import open_database
from batchops_core.worker.heartbeat import Heartbeat
from batchops_tui.cli.main import main
from tests.s3server import S3Server, make_bucket, s3_server, storage_env

__all__ = ["s3_server"]


def _lines(out: str, name: str) -> list[str]:
    return [line for line in out.splitlines() if line.split()[1] == name]


def test_doctor_probes_the_bucket(
    cli_env: pytest.MonkeyPatch, s3_server: S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = make_bucket(s3_server)
    for key, value in storage_env(s3_server, bucket).items():
        cli_env.setenv(key, value)
    assert main(["doctor"]) == 0
    (line,) = _lines(capsys.readouterr().out, "storage")
    assert line.startswith("ok") and f"s3://{bucket}/campus at {s3_server.endpoint}" in line
    assert "write, read back and delete work" in line

    for key, value in storage_env(s3_server, "bo-no-such-bucket").items():
        cli_env.setenv(key, value)
    assert main(["doctor"]) == 1, "a store that cannot be written fails the deployment"
    (line,) = _lines(capsys.readouterr().out, "storage")
    assert line.startswith("FAIL") and "s3://bo-no-such-bucket/campus" in line
    assert "does not exist" in line and "endpoint_url" in line, "the message and its hint"


def test_doctor_without_the_local_store_says_to_init(
    cli_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["doctor"]) == 1
    (line,) = _lines(capsys.readouterr().out, "storage")
    assert line.startswith("FAIL") and "run `batchops init`" in line
    assert not (tmp_path / "data" / "storage").exists(), "doctor reports, init creates"


async def _beat(settings: Settings, *names: str) -> None:
    db = open_database(settings)
    try:
        for name in names:
            await Heartbeat(db, settings, name).beat()
        await Heartbeat(db, settings, "embedded@laptop:5:cccccccc", embedded=True).beat()
    finally:
        await db.dispose()


def test_doctor_lists_the_hosts_with_live_daemons(
    cli_env: pytest.MonkeyPatch,
    db_settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "data" / "storage").mkdir(parents=True)
    a1, a2, b1 = "daemon@host-a:1:aaaaaaa1", "daemon@host-a:2:aaaaaaa2", "daemon@host-b:1:bbbbbbb1"
    asyncio.run(_beat(db_settings, a1, a2, b1))
    assert main(["doctor"]) == 0
    lines = _lines(capsys.readouterr().out, "daemons")
    assert len(lines) == 2, "one line per host; the TUI's embedded worker is no daemon"
    assert lines[0].startswith("ok") and f"host-a: {a1}, {a2} (last beat" in lines[0]
    assert f"host-b: {b1} (last beat" in lines[1] and "s ago)" in lines[1]

    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "Daemons alive on: host-a (2, last beat" in out and "host-b (1," in out
