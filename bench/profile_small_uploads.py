"""Small uploads per daemon: uploads/s, CPU per upload, and where the daemon's event loop spends it.

One `batchops-daemon` process (arq on Redis, local storage, `max_jobs` 10, its default pipeline
pool) processes N queued CSV uploads of 20 rows. Each round starts a fresh daemon on a fresh
database, lets it publish a warm-up batch (pool processes warm, prepared statements cached), then
times N uploads from the first enqueue to the last `published` and reads the CPU the daemon's
process and its pool processes used meanwhile (`/proc/<pid>/stat`).

With `--baseline REV` the rounds alternate between that commit's code (exported with `git
archive`) and this working tree, on the same machine minutes apart, and the figure is the median
of the per-pair ratios: the machine is shared, absolute figures drift.

With `--profile` one more round of this tree (and of the baseline) runs under cProfile, switched
on only for the measured window by signal, and `bench/profiles/small_uploads_after.txt` (and
`_before.txt`) receives the top functions by cumulative and by own CPU time on the daemon's
event-loop thread, the CPU split and the stages' times in the pool processes.

    python -m bench.profile_small_uploads                  # PostgreSQL, N=200, 3 rounds
    python -m bench.profile_small_uploads --db sqlite --baseline 2cea44d --rounds 5
    python -m bench.profile_small_uploads --baseline 2cea44d --burn 2       # under load
    python -m bench.profile_small_uploads --rounds 0 --profile --baseline 2cea44d
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, update

from batchops_core.enums import RunStatus, Stage, UploadStatus
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.models import JobRun, JobRunStep, Upload, WorkerHeartbeat
from batchops_core.permissions import SYSTEM
from batchops_core.services.uploads import intake_file
from batchops_core.worker.dispatcher import Dispatcher
from bench._common import ROOT, load_note
from bench.bench_queue import environment, write_config

PROFILES = Path(__file__).resolve().parent / "profiles"
PARKED = UploadStatus.CANCELLED
"""The status the timed uploads wait in: one no worker and no sweeper touches."""
WARM = 20
TOP = 35

LAUNCHER = """
import cProfile, signal, sys, time
from batchops_daemon.main import main
out = sys.argv[2]
prof = cProfile.Profile(time.thread_time)
def on(*_): prof.enable()
def off(*_):
    prof.disable()
    prof.dump_stats(out)
if out:
    signal.signal(signal.SIGUSR1, on)
    signal.signal(signal.SIGUSR2, off)
sys.exit(main(["--config", sys.argv[1], "--log-level", "WARNING"]))
"""
"""The daemon's entry point, plus cProfile on the main (event-loop) thread between SIGUSR1 and
SIGUSR2, timed by that thread's CPU clock: on a shared 2-core machine wall time would charge a
function for the time the loop was preempted (a `send` that wakes PostgreSQL measured 0.6 ms).
Passed with `-c` so that a baseline tree without this file runs it too."""


@dataclass
class Round:
    tree: str
    seconds: float
    uploads: int
    daemon_cpu: float
    pool_cpu: float
    server_cpu: float
    machine_busy: float
    stage_ms: dict[str, float]
    run_ms: float

    @property
    def rate(self) -> float:
        return self.uploads / self.seconds


# ------------------------------------------------------------------------------ processes


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].decode().split()
    except OSError:
        return None


def descendants(root: int) -> list[int]:
    """Every live process below `root` (the fork server and its pool processes)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))):
            parents.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """CPU seconds used so far by each live process of `pids` (utime + stime, every thread)."""
    tick = os.sysconf("SC_CLK_TCK")
    return {
        pid: (int(fields[11]) + int(fields[12])) / tick for pid in pids if (fields := _stat(pid))
    }


def used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two readings, over the processes alive at both."""
    return sum(after[pid] - before[pid] for pid in before.keys() & after.keys())


def servers() -> list[int]:
    """PostgreSQL's and Redis's processes (shared with whoever else uses them meanwhile)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                comm = Path(f"/proc/{entry}/comm").read_text().strip()
            except OSError:
                continue
            if comm in ("postgres", "redis-server") or comm.startswith("postgres:"):
                found.append(int(entry))
    return found


def machine_ticks() -> tuple[int, int]:
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


# ------------------------------------------------------------------------------ one round


async def _count(db: Database, status: UploadStatus) -> int:
    async with db.unit() as session:
        return (
            await session.scalar(select(func.count(Upload.id)).where(Upload.status == status)) or 0
        )


async def _alive(db: Database) -> bool:
    async with db.unit() as session:
        return bool(await session.scalar(select(func.count()).select_from(WorkerHeartbeat)))


async def _wait_published(db: Database, n: int, deadline: float) -> None:
    while await _count(db, UploadStatus.PUBLISHED) < n:
        if time.perf_counter() > deadline:
            raise SystemExit(f"only {await _count(db, UploadStatus.PUBLISHED)}/{n} published")
        await asyncio.sleep(0.05)


async def _intake(db: Database, settings: Settings, tmp: Path, n: int, tag: str) -> list[int]:
    ids = []
    for i in range(n):
        path = tmp / f"{tag}{i}.csv"
        rows = "".join(f"S{i:03d}{j:02d},9A,{40 + j},{50 + j}\n" for j in range(20))
        path.write_text("Student ID,class,maths,english\n" + rows)
        ids.append((await intake_file(db, settings, SYSTEM, path, source="Exams")).id)
    return ids


async def _set_status(db: Database, ids: list[int], status: UploadStatus) -> None:
    async with db.unit() as session:
        await session.execute(update(Upload).where(Upload.id.in_(ids)).values(status=status))


async def _enqueue(db: Database, settings: Settings, ids: list[int]) -> None:
    dispatcher = await Dispatcher.connect(db, settings)
    for upload_id in ids:
        await dispatcher.process_upload(upload_id)
    await dispatcher.close()


async def _stage_times(db: Database, ids: list[int]) -> tuple[dict[str, float], float]:
    """Median pool-side time of each stage, and median run wall time (claim to finish), in ms."""
    async with db.unit() as session:
        steps = (
            await session.execute(
                select(JobRunStep.stage, JobRunStep.duration_ms)
                .join(JobRun, JobRun.id == JobRunStep.run_id)
                .where(JobRun.upload_id.in_(ids))
            )
        ).all()
        runs = (
            await session.execute(
                select(JobRun.started_at, JobRun.finished_at).where(
                    JobRun.upload_id.in_(ids), JobRun.status == RunStatus.SUCCEEDED
                )
            )
        ).all()
    by_stage: dict[str, list[float]] = {}
    for stage, ms in steps:
        by_stage.setdefault(Stage(stage).value, []).append(float(ms or 0))
    walls = [1000 * (b - a).total_seconds() for a, b in runs if a and b]
    return (
        {s.value: statistics.median(by_stage.get(s.value, [0])) for s in Stage},
        statistics.median(walls) if walls else 0.0,
    )


def _start(tree: Path, config: Path, log: Path, profile_out: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = open(log, "wb")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(config), profile_out],
        cwd=tree,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def burners(count: int) -> list[subprocess.Popen[bytes]]:
    """`count` processes spinning on a core each: "under load", the same in every round."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def _config(settings: Settings, path: Path, stage_processes: int) -> Path:
    write_config(settings, path)
    if stage_processes:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"[pipeline]\nstage_processes = {stage_processes}\n")
    return path


async def run_round(
    tree: Path, n: int, profile_out: str = "", burn: int = 0, stage_processes: int = 0
) -> Round:
    async with environment(max_jobs=10) as (settings, db):
        tmp = Path(tempfile.mkdtemp(prefix="bo-prof-up-"))
        warm = await _intake(db, settings, tmp, WARM, "warm")
        ids = await _intake(db, settings, tmp, n, "class")
        # Parked until the timed part: the daemon's sweeper enqueues a `queued` upload that no
        # arq job covers within ~4 s (rescue.py), which would start them before the clock.
        await _set_status(db, ids, PARKED)
        config = _config(settings, tmp / "config.toml", stage_processes)
        proc = _start(tree, config, tmp / "daemon.log", profile_out)
        load: list[subprocess.Popen[bytes]] = []
        try:
            deadline = time.perf_counter() + 120
            while not await _alive(db):
                if proc.poll() is not None or time.perf_counter() > deadline:
                    raise SystemExit(f"daemon did not start: {(tmp / 'daemon.log').read_text()}")
                await asyncio.sleep(0.1)
            await _enqueue(db, settings, warm)
            await _wait_published(db, WARM, time.perf_counter() + 300)
            pids = [proc.pid, *descendants(proc.pid)]
            daemon_before = cpu_seconds([proc.pid])
            pool_before = cpu_seconds(pids[1:])
            server_pids = servers()
            server_before = cpu_seconds(server_pids)
            load = burners(burn)
            busy_before, all_before = machine_ticks()
            if profile_out:
                proc.send_signal(signal.SIGUSR1)
            started = time.perf_counter()
            await _set_status(db, ids, UploadStatus.QUEUED)
            await _enqueue(db, settings, ids)
            await _wait_published(db, WARM + n, started + 900)
            seconds = time.perf_counter() - started
            if profile_out:
                proc.send_signal(signal.SIGUSR2)
            busy_after, all_after = machine_ticks()
            daemon_cpu = used(daemon_before, cpu_seconds([proc.pid]))
            pool_cpu = used(pool_before, cpu_seconds(pids[1:]))
            server_cpu = used(server_before, cpu_seconds(server_pids))
        finally:
            for burner in load:
                burner.kill()
                burner.wait()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        async with db.unit() as session:
            runs = await session.scalar(
                select(func.count(JobRun.id)).where(JobRun.status == RunStatus.SUCCEEDED)
            )
        assert runs == WARM + n, f"{runs} succeeded runs for {WARM + n} uploads (duplicates?)"
        stage_ms, run_ms = await _stage_times(db, ids)
        cores = os.cpu_count() or 1
        busy = (busy_after - busy_before) / max(1, all_after - all_before) * cores
        return Round(
            str(tree), seconds, n, daemon_cpu, pool_cpu, server_cpu, busy, stage_ms, run_ms
        )


# ------------------------------------------------------------------------------ reporting


def _export(rev: str) -> Path:
    """`rev`'s tree in a temporary folder (the baseline's code, run from there)."""
    target = Path(tempfile.mkdtemp(prefix=f"bo-baseline-{rev[:8]}-"))
    archive = subprocess.run(
        ["git", "archive", rev], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def describe(r: Round) -> str:
    per = 1000 / r.uploads
    return (
        f"{r.rate:6.1f} uploads/s  ({r.uploads} in {r.seconds:.1f} s)  CPU per upload: "
        f"daemon {r.daemon_cpu * per:.1f} ms, pool {r.pool_cpu * per:.1f} ms, "
        f"PostgreSQL+Redis {r.server_cpu * per:.1f} ms; "
        f"machine busy {r.machine_busy:.2f} of {os.cpu_count()} cores"
    )


def stage_table(r: Round) -> str:
    stages = "  ".join(f"{s} {ms:.1f}" for s, ms in r.stage_ms.items())
    return f"pool-side stage medians (ms): {stages}; run wall median {r.run_ms:.0f} ms"


def profile_text(prof_path: Path, r: Round, label: str, db_name: str) -> str:
    head = [
        f"# Small uploads: the daemon's event loop under cProfile ({label})",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M')}, database {db_name}, {r.uploads} uploads of 20 rows, "
        f"max_jobs 10, one daemon; {load_note()}",
        f"profiled round (cProfile slows the loop; throughput figures come from unprofiled "
        f"rounds): {describe(r)}",
        stage_table(r),
        "",
        "cProfile runs on the main thread only (the event loop), timed by that thread's CPU "
        "clock. A coroutine",
        "counts one call per resume; its cumtime is CPU the loop spent running it, not time it "
        "waited.",
    ]
    out = ["\n".join(head)]
    for key, title in (("cumulative", "by cumulative time"), ("tottime", "by own time")):
        buf = io.StringIO()
        stats = pstats.Stats(str(prof_path), stream=buf)
        stats.strip_dirs().sort_stats(key).print_stats(TOP)
        text = buf.getvalue()
        text = text[text.index("   ncalls") :] if "   ncalls" in text else text
        total = f"{stats.total_tt:.2f} CPU s on the loop thread, {stats.total_calls:,} calls"  # type: ignore[attr-defined]
        out.append(f"## Top {TOP} {title} ({total})\n\n{text.rstrip()}")
    return "\n\n".join(out) + "\n"


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("-n", type=int, default=200, help="uploads per round (default 200)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", help="a git revision to alternate with this tree")
    parser.add_argument(
        "--stage-processes",
        type=int,
        default=0,
        metavar="N",
        help="[pipeline] stage_processes of the daemon (default 0: its own default, 2 here)",
    )
    parser.add_argument(
        "--burn",
        type=int,
        default=0,
        metavar="N",
        help="N busy processes spinning while each round is timed (a reproducible 'under load')",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="write profiles/small_uploads_after.txt (and _before.txt for the baseline)",
    )
    args = parser.parse_args(argv)
    os.environ["BENCH_DB"] = args.db
    base = _export(args.baseline) if args.baseline else None
    burning = f", {args.burn} busy processes beside it" if args.burn else ""
    print(
        f"{args.n} uploads of 20 rows, one daemon, max_jobs 10, {args.db}{burning}; {load_note()}"
    )
    ratios: list[float] = []
    rates: dict[str, list[float]] = {"baseline": [], "this tree": []}
    for i in range(args.rounds):
        pair: dict[str, Round] = {}
        trees = [("baseline", base), ("this tree", ROOT)] if base else [("this tree", ROOT)]
        for name, tree in trees if i % 2 == 0 else trees[::-1]:
            assert tree is not None
            pair[name] = await run_round(
                tree, args.n, burn=args.burn, stage_processes=args.stage_processes
            )
            rates[name].append(pair[name].rate)
            print(f"round {i + 1} {name:<9} {describe(pair[name])}", flush=True)
            print(f"               {stage_table(pair[name])}", flush=True)
        if base:
            ratios.append(pair["this tree"].rate / pair["baseline"].rate)
    for name, values in rates.items():
        if values:
            listed = ", ".join(f"{v:.1f}" for v in values)
            print(f"median {name}: {statistics.median(values):.1f} uploads/s ({listed})")
    if ratios:
        print(
            f"median ratio this tree / baseline: {statistics.median(ratios):.2f}x "
            f"{[round(v, 2) for v in ratios]}"
        )
    if args.profile:
        profiled = [("after", ROOT)] + ([("before", base)] if base else [])
        for label, tree in profiled:
            assert tree is not None
            prof = Path(tempfile.mkdtemp(prefix="bo-prof-")) / "daemon.prof"
            r = await run_round(
                tree,
                args.n,
                profile_out=str(prof),
                burn=args.burn,
                stage_processes=args.stage_processes,
            )
            PROFILES.mkdir(exist_ok=True)
            target = PROFILES / f"small_uploads_{label}.txt"
            code = "this tree" if tree == ROOT else f"baseline {args.baseline}"
            target.write_text(profile_text(prof, r, f"{label}: {code}", args.db), encoding="utf-8")
            print(f"profiled {label}: {describe(r)}\nwrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
