"""Hosts of a campus on one machine: each its own mount and UTS namespace, so its data directory
is a private tmpfs the other hosts cannot see, and its hostname is its own.

Every host mounts its tmpfs at the SAME path (`<base>/host`): an absolute path written by one host
would then name a file on another only if the directory were shared, and it is not — the bytes
a host may rely on come from PostgreSQL, Redis and the object store. A host is a holder process
(`unshare -m -u … sleep infinity`) that owns the namespaces; its commands join them with
`nsenter`, so a host outlives its commands (the TUI host exports a report, then shows it). The test
reads a host's files through `/proc/<holder>/root/…`, the holder's view of the filesystem.

Where `unshare` is not permitted (not root, a locked-down container) every host gets a plain
directory of its own instead (`<base>/<name>`), which keeps the hosts apart only by convention.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def namespaces_permitted() -> bool:
    """Whether this process may create mount + UTS namespaces and mount a tmpfs in them."""
    try:
        probe = subprocess.run(
            ["unshare", "-m", "-u", "--propagation", "private", "sh", "-c",
             "mount -t tmpfs tmpfs /mnt && hostname probe"],
            capture_output=True,
            timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


@dataclass
class Host:
    """One machine of the campus: a private data directory, its own hostname and environment."""

    name: str
    base: Path
    env: Mapping[str, str]
    isolated: bool = field(default_factory=namespaces_permitted)
    holder: subprocess.Popen[bytes] | None = None
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def root(self) -> Path:
        """The host's own directory, as the host sees it (the same path on every isolated host)."""
        return self.base / "host" if self.isolated else self.base / self.name

    def start(self) -> Host:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.isolated:
            script = (
                f"hostname {shlex.quote(self.name)} && "
                f"mount -t tmpfs -o size=1g,mode=0700 tmpfs {shlex.quote(str(self.root))} && "
                "echo ready && exec sleep infinity"
            )
            self.holder = subprocess.Popen(
                ["unshare", "-m", "-u", "--propagation", "private", "sh", "-c", script],
                stdout=subprocess.PIPE,
            )
            assert self.holder.stdout is not None
            line = self.holder.stdout.readline()
            assert line.strip() == b"ready", f"host {self.name} did not start: {line!r}"
        for sub in ("data", "exports", "xdg", "in", "logs"):
            self.local(self.root / sub).mkdir(exist_ok=True)
        return self

    def local(self, path: Path) -> Path:
        """`path` as this host sees it, reachable from the test's own namespace."""
        if self.holder is None:
            return path
        return Path(f"/proc/{self.holder.pid}/root") / path.relative_to("/")

    def environment(self) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("BATCHOPS_")}
        return {
            **inherited,
            "PYTHONPATH": str(ROOT),
            "HOME": str(self.root),
            "XDG_CONFIG_HOME": str(self.root / "xdg"),
            "BATCHOPS_DATA_DIR": str(self.root / "data"),
            "BATCHOPS_EXPORT_DIR": str(self.root / "exports"),
            **self.env,
        }

    def argv(self, command: Sequence[str]) -> list[str]:
        """`command` run inside this host, from its own directory (no config file there)."""
        inner = ["sh", "-c", 'cd "$0" && exec "$@"', str(self.root), *command]
        if self.holder is None:
            return inner
        return ["nsenter", "-t", str(self.holder.pid), "-m", "-u", "--", *inner]

    def run(
        self, command: Sequence[str], *, timeout: float = 60, extra: Mapping[str, str] = {}
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(command),
            env={**self.environment(), **extra},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def batchops(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.run([str(BIN / "batchops"), *args], timeout=timeout)

    def spawn(self, command: Sequence[str], log_name: str) -> subprocess.Popen[bytes]:
        """A long-running command (a daemon) whose output goes to a log on the test's side."""
        log = self.base / f"{self.name}.{log_name}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                self.argv(command), env=self.environment(), stdout=out, stderr=subprocess.STDOUT
            )
        self.processes.append(process)
        return process

    def daemon(self, *, entry: str = "batchops_daemon.main") -> subprocess.Popen[bytes]:
        """`batchops-daemon` on this host (`entry` may name a module that wraps its `main`, such
        as tests.daemon.entry with its test hooks)."""
        return self.spawn([sys.executable, "-m", entry, "--log-level", "INFO"], "daemon")

    def log(self, log_name: str = "daemon") -> str:
        path = self.base / f"{self.name}.{log_name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Kill what runs in the host, then the holder: the namespace and its tmpfs go with it."""
        for process in [*self.processes, *([self.holder] if self.holder else [])]:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        if self.holder is not None and self.holder.stdout is not None:
            self.holder.stdout.close()
