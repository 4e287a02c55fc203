"""Daemon tests: condition polling with deadlines, a real SMTP server, daemon subprocesses."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from batchops_core.infra.config import Settings, WorkerSettings
from tests.mailserver import MailServer, mailserver, smtp_settings

__all__ = ["mailserver", "MailServer", "smtp_settings"]

ROOT = Path(__file__).resolve().parents[2]


async def wait_for(
    condition: Callable[[], Awaitable[Any]], *, timeout: float = 20.0, every: float = 0.05
) -> Any:
    """Poll an async condition until it returns something truthy; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value {value!r})")
        await asyncio.sleep(every)


def fast_worker(settings: Settings, **changes: Any) -> Settings:
    """Settings with short heartbeats and timeouts so crash and retry tests run in seconds."""
    worker = dataclasses.replace(
        settings.worker,
        **{
            "heartbeat_seconds": 1,
            "stale_after_seconds": 3,
            "health_interval": 5,
            "shutdown_grace": 5,
            "poll_delay": 0.05,
            "metrics_port": -1,
            **changes,
        },
    )
    return dataclasses.replace(settings, worker=worker)


def write_config(path: Path, settings: Settings) -> Path:
    """A config.toml that reproduces `settings` for a daemon subprocess."""
    w: WorkerSettings = settings.worker
    lines = [
        f'data_dir = "{settings.data_dir}"',
        "[database]",
        f'url = "{settings.database.url}"',
        "[redis]",
        f'url = "{settings.redis.url}"',
        f'prefix = "{settings.redis.prefix}"',
        "connect_timeout = 1.0",
        "[worker]",
        *(f"{f.name} = {getattr(w, f.name)!r}".replace("'", '"') for f in dataclasses.fields(w)),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class DaemonProcess:
    """A `batchops-daemon` subprocess with its output captured to a file."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.log = config.with_suffix(f".{time.monotonic_ns()}.log")
        self._out = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.daemon.entry", "--config", str(config), *args],
            cwd=ROOT,
            env=full_env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._out.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._out.close()


@pytest.fixture
def daemons() -> Iterator[Callable[..., DaemonProcess]]:
    """Start daemon subprocesses; every one still running at the end is killed."""
    started: list[DaemonProcess] = []

    def start(config: Path, *args: str, env: dict[str, str] | None = None) -> DaemonProcess:
        process = DaemonProcess(config, *args, env=env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
