"""Where the entry points' log lines go: the journal, a terminal, or a private file.

* The daemon under systemd writes to stderr, which systemd connects to the journal and announces
  in `JOURNAL_STREAM` (`<device>:<inode>` of that stream). There each line starts with its syslog
  priority (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug) so `journalctl -p warning` can
  filter, and carries no timestamp (the journal stamps every line itself). Elsewhere — a terminal,
  a file, a test's pipe — the usual timestamped lines.
* The TUI owns the terminal, so a log line printed there would tear the screen: it logs to
  `<data_dir>/logs/tui.log`, rotated, readable by its owner only (it may name users and files).
"""

from __future__ import annotations

import logging
import os
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TextIO

CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(name)s: %(message)s"
TUI_LOG_BYTES = 1_000_000
TUI_LOG_BACKUPS = 3


def syslog_priority(levelno: int) -> int:
    """The syslog priority of a logging level (journald's `<N>` line prefix)."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


class JournalFormatter(logging.Formatter):
    """`<N>name: message`, the prefix on every line so a traceback keeps its priority."""

    def __init__(self) -> None:
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def stream_is_journal(stream: TextIO, env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """True when `stream` is the journal stream systemd announced in JOURNAL_STREAM."""
    announced = env.get("JOURNAL_STREAM", "")
    device, _, inode = announced.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        stat = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (stat.st_dev, stat.st_ino) == (int(device), int(inode))


def log_to_stderr(level: int, stream: TextIO | None = None) -> logging.Handler:
    """The daemon's logging: journal-friendly lines under systemd, timestamped ones elsewhere."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    if stream_is_journal(stream):
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter(CONSOLE_FORMAT))
    _install(handler, level)
    return handler


class PrivateRotatingFileHandler(RotatingFileHandler):
    """A rotating log file created (and kept, across rotations) with mode 0600."""

    def _open(self) -> TextIO:  # type: ignore[override]
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)  # also when the file existed with a wider mode
        return open(fd, self.mode, encoding=self.encoding, errors=self.errors)  # noqa: SIM115


def log_to_file(path: Path, level: int = logging.INFO) -> logging.Handler:
    """Log to `path` (directory made 0700, file 0600, rotated at ~1 MB, 3 old files kept)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handler = PrivateRotatingFileHandler(
        path, maxBytes=TUI_LOG_BYTES, backupCount=TUI_LOG_BACKUPS, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter(CONSOLE_FORMAT))
    _install(handler, level)
    return handler


def _install(handler: logging.Handler, level: int) -> None:
    """Add `handler` to the root logger, replacing one an earlier setup of ours added (handlers
    others added, e.g. a test runner's capture, stay)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "batchops_entry", False)]:
        root.removeHandler(old)
        old.close()
    handler.batchops_entry = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
