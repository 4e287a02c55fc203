"""Hosts of a campus on one machine: each its own mount, UTS and network namespace, so its data
directory is a private tmpfs the other hosts cannot see, its hostname is its own, and it reaches
PostgreSQL, Redis and the object store only through an address the test made for it.

* **Disk.** Every host mounts its tmpfs at the SAME path (`<base>/host`): an absolute path written
  by one host would name a file on another only if the directory were shared, and it is not.
* **Network.** A host gets a veth pair (`10.x.y.z/30`, the machine's end is its `gateway`) and,
  on the machine's end, one `socat` forwarder per shared service (`gateway:port` →
  `127.0.0.1:port`: PostgreSQL listens on loopback only). Inside, 127.0.0.1 is the host's own.
* **Lifetime.** A host is a holder process (`unshare … sleep infinity`) that owns the namespaces;
  its commands join them with `nsenter`, so a host outlives its commands (the TUI host exports a
  report, then reads it). Killing the holder drops the namespaces, the veth and the tmpfs. The
  test reads a host's files through `/proc/<holder>/root/…`, the holder's view of the filesystem.

Without permission to unshare (not root, a locked-down container) every host gets a plain
directory of its own (`<base>/<name>`) and the machine's loopback; without `ip` or `socat`, the
namespaces but the machine's network.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"


def _probe(command: list[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@functools.cache
def namespaces_permitted() -> bool:
    """Whether this process may create mount + UTS namespaces and mount a tmpfs in them."""
    script = "mount -t tmpfs tmpfs /mnt && hostname probe"
    return _probe(["unshare", "-m", "-u", "--propagation", "private", "sh", "-c", script])


@functools.cache
def network_permitted() -> bool:
    """Whether hosts can have network namespaces joined to this one by veth and socat."""
    tools = shutil.which("ip") and shutil.which("socat")
    return bool(tools) and namespaces_permitted() and _probe(["unshare", "-n", "true"])


def _free_subnet() -> ipaddress.IPv4Network:
    """A random /30 in 10.192.0.0/10 that overlaps no network of this machine's interfaces."""
    shown = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    used = [
        ipaddress.IPv4Network(word, strict=False)
        for word in shown.split()
        if "/" in word and word[0].isdigit()
    ]
    while True:
        net = ipaddress.IPv4Network((0x0AC00000 + 4 * secrets.randbelow(1 << 20), 30))
        if not any(net.overlaps(other) for other in used):
            return net


@dataclass
class Host:
    """One machine of the campus: a private data directory, hostname, network and environment."""

    name: str
    base: Path
    env: Mapping[str, str] = field(default_factory=dict)
    isolated: bool = field(default_factory=namespaces_permitted)
    networked: bool = field(default_factory=network_permitted)
    holder: subprocess.Popen[bytes] | None = None
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    forwarders: list[subprocess.Popen[bytes]] = field(default_factory=list)
    subnet: ipaddress.IPv4Network | None = None

    def __post_init__(self) -> None:
        self.networked = self.networked and self.isolated
        if self.networked:
            self.subnet = _free_subnet()

    @property
    def root(self) -> Path:
        """The host's own directory, as the host sees it (the same path on every isolated host)."""
        return self.base / "host" if self.isolated else self.base / self.name

    @property
    def gateway(self) -> str:
        """The address where this host finds the shared services (loopback without netns)."""
        return str(self.subnet.network_address + 1) if self.subnet else LOOPBACK

    @property
    def address(self) -> str | None:
        return str(self.subnet.network_address + 2) if self.subnet else None

    @property
    def _veth(self) -> str:
        return f"bo{self.subnet.network_address.packed.hex()}" if self.subnet else ""

    def start(self, forward: Sequence[int] = ()) -> Host:
        """Create the host; `forward` lists the loopback ports it may reach at `gateway`."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.isolated:
            script = (
                f"hostname {shlex.quote(self.name)} && "
                f"mount -t tmpfs -o size=1g,mode=0700 tmpfs {shlex.quote(str(self.root))} && "
                "echo ready && exec sleep infinity"
            )
            flags = ["-m", "-u", *(["-n"] if self.networked else [])]
            self.holder = subprocess.Popen(
                ["unshare", *flags, "--propagation", "private", "sh", "-c", script],
                stdout=subprocess.PIPE,
            )
            assert self.holder.stdout is not None
            line = self.holder.stdout.readline()
            assert line.strip() == b"ready", f"host {self.name} did not start: {line!r}"
        if self.networked:
            self._wire(forward)
        for sub in ("data", "exports", "xdg", "in", "logs"):
            self.local(self.root / sub).mkdir(exist_ok=True)
        return self

    def _wire(self, forward: Sequence[int]) -> None:
        assert self.holder is not None and self.subnet is not None
        prefix = self.subnet.prefixlen
        pid = str(self.holder.pid)
        inside = ["nsenter", "-t", pid, "-n", "ip"]
        for command in (
            ["ip", "link", "add", self._veth, "type", "veth", "peer", "name", "eth0", "netns", pid],
            ["ip", "addr", "add", f"{self.gateway}/{prefix}", "dev", self._veth],
            ["ip", "link", "set", self._veth, "up"],
            [*inside, "link", "set", "lo", "up"],
            [*inside, "addr", "add", f"{self.address}/{prefix}", "dev", "eth0"],
            [*inside, "link", "set", "eth0", "up"],
        ):
            subprocess.run(command, check=True, capture_output=True, timeout=10)
        for port in forward:
            listen = f"TCP-LISTEN:{port},bind={self.gateway},fork,reuseaddr"
            self.forwarders.append(
                subprocess.Popen(
                    ["socat", listen, f"TCP:{LOOPBACK}:{port}"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in forward:
            _wait_listening(self.gateway, port)

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
        flags = ["-m", "-u", *(["-n"] if self.networked else [])]
        return ["nsenter", "-t", str(self.holder.pid), *flags, "--", *inner]

    def run(
        self, command: Sequence[str], *, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(command),
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def batchops(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.run([str(BIN / "batchops"), *args], timeout=timeout)

    def reaches(self, address: str, port: int) -> bool:
        """Whether a TCP connection from inside this host to `address:port` succeeds."""
        code = f"import socket; socket.create_connection(({address!r}, {port}), timeout=2)"
        return self.run([sys.executable, "-c", code], timeout=20).returncode == 0

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
        """Kill what runs in the host, its forwarders, then the holder: the namespaces, the veth
        and the tmpfs go with it."""
        holder = [self.holder] if self.holder else []
        for process in [*self.processes, *self.forwarders, *holder]:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        if self.holder is not None and self.holder.stdout is not None:
            self.holder.stdout.close()


def _wait_listening(address: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no forwarder on {address}:{port} after {timeout} s"
                ) from None
            time.sleep(0.02)
