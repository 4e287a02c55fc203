"""Shared helpers of the pipeline benchmarks: data under bench/out/, child-process measurement.

Each scenario runs in a fresh child process so its peak memory (`ru_maxrss`) is its own; the
imports' resident size is measured first and subtracted, so "peak" is what the work itself added.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"
ROOT = Path(__file__).resolve().parent.parent


def out_dir() -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    return OUT


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024**2


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_report(fn: Callable[[], dict[str, Any] | None], runs: int = 2) -> None:
    """Run `fn` `runs` times in this (child) process; print one JSON line with the first (cold)
    and last (warm, as in a long-lived pool worker) times and the peak memory added."""
    base = rss_mb()
    times = []
    cpu = 0.0
    extra: dict[str, Any] = {}
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        extra = fn() or {}
        times.append(time.perf_counter() - started)
        cpu = time.process_time() - cpu_started
    print(
        json.dumps(
            {
                "seconds": times[-1],
                "cold_seconds": times[0],
                "cpu_seconds": cpu,
                "peak_added_mb": peak_mb() - base,
                **extra,
            }
        ),
        flush=True,
    )


def run_child(module: str, scenario: str, *args: str) -> dict[str, Any]:
    """Run `python -m <module> --child <scenario> args…` and parse its last JSON line."""
    proc = subprocess.run(
        [sys.executable, "-m", module, "--child", scenario, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise SystemExit(f"{scenario} failed:\n{proc.stdout}\n{proc.stderr}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def best(module: str, scenario: str, *args: str, repeat: int = 1) -> dict[str, Any]:
    """The fastest of `repeat` child runs (peak memory from that run)."""
    runs = [run_child(module, scenario, *args) for _ in range(repeat)]
    return min(runs, key=lambda r: r["seconds"])


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def load_note() -> str:
    """The machine's load average, printed with the figures: on a shared 2-core machine a load
    above 2 means other work competed with the benchmark (parallel speedups shrink first)."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"
