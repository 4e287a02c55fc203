"""Log lines: journald priorities under systemd, timestamps elsewhere, a private TUI log file."""

from __future__ import annotations

import configparser
import logging
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from batchops_core.infra.config import RedisSettings, Settings, SmtpSettings
from batchops_core.infra.logs import JournalFormatter, stream_is_journal, syslog_priority
from batchops_tui.launch import _log_to_file, tui_log_path

ROOT = Path(__file__).resolve().parents[2]


def record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("batchops_daemon", level, __file__, 1, message, None, None)


def test_journal_lines_carry_their_syslog_priority_on_every_line() -> None:
    formatter = JournalFormatter()
    assert (
        formatter.format(record(logging.WARNING, "Redis lost")) == "<4>batchops_daemon: Redis lost"
    )
    assert formatter.format(record(logging.INFO, "a\nb")) == "<6>batchops_daemon: a\n<6>b"
    levels = (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)
    assert [syslog_priority(level) for level in levels] == [7, 6, 4, 3, 2]


def test_the_journal_is_recognised_by_the_stream_systemd_announced(tmp_path: Path) -> None:
    with open(tmp_path / "journal", "w") as journal, open(tmp_path / "other", "w") as other:
        st = os.fstat(journal.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert stream_is_journal(journal, env)
        assert not stream_is_journal(other, env)  # stderr redirected elsewhere by hand
        assert not stream_is_journal(journal, {})
        assert not stream_is_journal(journal, {"JOURNAL_STREAM": "garbage"})


def daemon_stderr(tmp_path: Path, journal: bool) -> str:
    """Run the real daemon's `--check` at DEBUG with stderr to a file; return what it logged."""
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n', encoding="utf-8")
    err = tmp_path / f"stderr-{journal}.txt"
    with open(err, "w") as fh:
        st = os.fstat(fh.fileno())
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BATCHOPS_", "JOURNAL"))}
        if journal:
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        subprocess.run(
            [sys.executable, "-m", "batchops_daemon.main", "--config", str(config), "--check"]
            + ["--log-level", "DEBUG"],
            cwd=ROOT,
            env=env,
            stderr=fh,
            stdout=subprocess.DEVNULL,
            timeout=60,
        )
    return err.read_text()


def test_daemon_logs_for_the_journal_only_when_stderr_is_the_journal(tmp_path: Path) -> None:
    journal = daemon_stderr(tmp_path, journal=True)
    console = daemon_stderr(tmp_path, journal=False)
    assert re.search(r"^<7>asyncio: Using selector", journal, re.M), journal
    assert not re.search(r"^\d{4}-\d\d-\d\d ", journal, re.M)  # the journal stamps lines itself
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ DEBUG asyncio: Using", console, re.M)
    assert "<7>" not in console


@pytest.fixture
def root_logger_restored() -> object:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield root
    for handler in [h for h in root.handlers if h not in before]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)


def test_tui_logs_to_a_private_rotated_file(tmp_path: Path, root_logger_restored: object) -> None:
    settings = Settings(data_dir=str(tmp_path), redis=RedisSettings(url=""), smtp=SmtpSettings())
    _log_to_file(settings)
    path = tui_log_path(settings)
    assert path == tmp_path / "logs" / "tui.log"
    # A logger of its own: import-linter's in-process run (test_layers) disables existing ones.
    log = logging.getLogger("batchops_tui.log_probe")
    log.warning("refresh failed: %s", "boom")
    assert "WARNING batchops_tui.log_probe: refresh failed: boom" in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    (handler,) = [h for h in logging.getLogger().handlers if getattr(h, "batchops_entry", False)]
    assert handler.maxBytes > 0 and handler.backupCount >= 1  # type: ignore[attr-defined]
    handler.doRollover()  # type: ignore[attr-defined]
    log.warning("after rotation")
    rotated = path.with_name("tui.log.1")
    assert "boom" in rotated.read_text() and "after rotation" in path.read_text()
    assert {stat.S_IMODE(p.stat().st_mode) for p in (path, rotated)} == {0o600}


def test_systemd_unit_keeps_start_limits_in_unit_and_a_umask() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "deploy" / "batchops-daemon.service")
    assert unit["Unit"]["StartLimitIntervalSec"] == "600"
    assert unit["Unit"]["StartLimitBurst"] == "20"
    assert "StartLimitIntervalSec" not in unit["Service"]
    assert "StartLimitBurst" not in unit["Service"]
    assert unit["Service"]["UMask"] == "0027"
