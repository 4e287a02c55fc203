"""Start-up figures of the real `batchops` command, launched in a pseudo-terminal.

* sign-in: `batchops` (no command) is started in an 80×24 pseudo-terminal, as an operator's SSH
  session would start it, and the clock stops when the sign-in screen's text has been written to
  the terminal. Baseline in the same run: a minimal Textual app (one `Static`) started the same way
  by the same interpreter, until its text is on the terminal. Goal: ≤ 1.3× the baseline.
* `batchops --help`: the real command until it exits. Baseline: `python -c pass`. Goal: ≤ 0.3 s.

Also printed: the CPU time the process had used when the marker appeared (from /proc, 10 ms
ticks; steadier than wall time on this shared machine), and a third launch — BatchOps' own
sign-in screen and stylesheet in a bare Textual app — the floor the `batchops` entry can reach,
since that screen (its buttons above all: Textual parses ~40 ms of Button CSS) costs more to
draw than one Static.

Both run against a freshly initialized embedded data directory with no Redis, so the TUI takes
the same path (embedded worker helpers, database opened behind the sign-in screen) as `make run`.
Each figure is the median of `RUNS` alternating launches, so a load spike hits both sides alike.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

RUNS = int(os.environ.get("BENCH_STARTUP_RUNS", "7"))
BIN = Path(sys.executable).parent
PYTHON = sys.executable
ANSI = re.compile(rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")
SIGNIN_TEXT = b"control room"
MINIMAL_TEXT = b"minimal textual app"
SIGNIN_ONLY = """
from pathlib import Path
from textual.app import App
from batchops_tui import app
from batchops_tui.screens.signin import SignInScreen

class SignInOnly(App):
    CSS_PATH = str(Path(app.__file__).parent / app.BatchOpsApp.CSS_PATH)

    def on_mount(self):
        self.push_screen(SignInScreen())

SignInOnly().run()
"""
MINIMAL_APP = """
from textual.app import App
from textual.widgets import Static

class Minimal(App):
    def compose(self):
        yield Static("minimal textual app")

Minimal().run()
"""


def in_terminal(
    argv: list[str], marker: bytes, env: dict[str, str], timeout: float = 30
) -> tuple[float, float]:
    """(seconds from fork to `marker` appearing on an 80×24 pty, escape sequences removed; CPU
    seconds the process had used by then)."""
    started = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal is already its stdin/stdout/stderr
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        os.execve(argv[0], argv, env)
    seen = b""
    try:
        while True:
            left = timeout - (time.perf_counter() - started)
            if left <= 0:
                raise RuntimeError(f"{argv} showed no {marker!r} in {timeout} s: {seen[-300:]!r}")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                raise RuntimeError(f"{argv} exited before {marker!r}: {seen[-300:]!r}") from None
            seen += chunk
            if marker in ANSI.sub(b"", seen):
                return time.perf_counter() - started, cpu_seconds(pid)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process, from /proc/<pid>/stat (fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_run(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def line(label: str, values: list[float], extra: str = "") -> float:
    median = statistics.median(values)
    low, high = min(values) * 1000, max(values) * 1000
    print(f"{label:<38} {median * 1000:7.1f} ms (min {low:.1f}, max {high:.1f}){extra}", flush=True)
    return median


def environment(data_dir: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("BATCHOPS_")}
    return {
        **keep,
        "TERM": "xterm-256color",
        "COLUMNS": "80",
        "LINES": "24",
        "XDG_CONFIG_HOME": data_dir,  # no stray user config.toml
        "BATCHOPS_CONFIG": str(Path(data_dir) / "config.toml"),
        "BATCHOPS_DATA_DIR": data_dir,
        "BATCHOPS_REDIS_URL": "",
        "BATCHOPS_DATABASE_URL": "",
    }


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "config.toml").write_text("", encoding="utf-8")
        env = environment(tmp)
        subprocess.run(
            [str(BIN / "batchops"), "init"], env=env, check=True, stdout=subprocess.DEVNULL
        )
        launches = {
            "minimal Textual app (one Static)": ([sys.executable, "-c", MINIMAL_APP], MINIMAL_TEXT),
            "batchops to the sign-in screen": ([str(BIN / "batchops")], SIGNIN_TEXT),
            "sign-in screen alone in a bare App": (
                [sys.executable, "-c", SIGNIN_ONLY],
                SIGNIN_TEXT,
            ),
        }
        for argv, marker in launches.values():  # warm the page cache for all
            in_terminal(argv, marker, env)
        wall: dict[str, list[float]] = {name: [] for name in launches}
        cpu: dict[str, list[float]] = {name: [] for name in launches}
        bare, helps = [], []
        for _ in range(RUNS):
            for name, (argv, marker) in launches.items():
                took, used = in_terminal(argv, marker, env)
                wall[name].append(took)
                cpu[name].append(used)
            bare.append(timed_run([sys.executable, "-c", "pass"], env))
            helps.append(timed_run([str(BIN / "batchops"), "--help"], env))
        base = next(iter(launches))
        base_wall, base_cpu = statistics.median(wall[base]), statistics.median(cpu[base])
        for name in launches:
            w, c = statistics.median(wall[name]), statistics.median(cpu[name])
            ratio = "" if name == base else f"   {w / base_wall:.2f}× wall, {c / base_cpu:.2f}× CPU"
            line(name, wall[name], f"   CPU {c * 1000:5.0f} ms{ratio}")
        print(f"{'':<38} goal: batchops ≤ 1.3× the minimal app")
        line("bare interpreter (python -c pass)", bare)
        h = line("batchops --help", helps)
        print(f"{'':<38} {'within' if h <= 0.3 else 'over'} the goal ≤ 300 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
