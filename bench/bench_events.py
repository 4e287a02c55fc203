"""Event latency: from a pipeline stage finishing in the worker to a subscriber receiving its
event, p50 and p99, against a bare redis-py PUBLISH → SUBSCRIBE round trip in the same run.

The worker is a `batchops-daemon` process processing N tiny uploads; the subscriber is
`events.subscribe` in this process, as the TUI would be. Latency = receive time − the event's
`at` stamp, set right after the runner committed the stage's step (one machine clock).

With `max_jobs` 1 the figure is the publish path itself; with 10 uploads at once it includes
the wait for the daemon's busy event loop (two cores, ten pipelines' bookkeeping).

    python -m bench.bench_events         # N=40 uploads (200 stage events) per setting
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from redis.asyncio import Redis

from batchops_core.enums import UploadStatus
from batchops_core.infra import events
from batchops_core.infra.clock import utcnow
from batchops_core.permissions import SYSTEM
from batchops_core.services.uploads import intake_file
from batchops_core.worker.dispatcher import Dispatcher
from bench.bench_queue import environment, start_daemon, stop_daemon, write_config

N = int(os.environ.get("BENCH_N", "40"))
BARE = 2000


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def bare_round_trip(url: str, channel: str) -> list[float]:
    pub, sub = Redis.from_url(url), Redis.from_url(url)
    pubsub = sub.pubsub()
    await pubsub.subscribe(channel)
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    lags = []
    for i in range(BARE):
        sent = time.perf_counter()
        await pub.publish(channel, str(i))
        while (await pubsub.get_message(timeout=1)) is None:
            pass
        lags.append((time.perf_counter() - sent) * 1000)
    await pubsub.aclose()
    await pub.aclose()
    await sub.aclose()
    return lags


async def measure(max_jobs: int) -> tuple[list[float], list[float], int]:
    async with environment(max_jobs=max_jobs) as (settings, db):
        bare = await bare_round_trip(settings.redis.url, f"{settings.redis.prefix}:bare")
        tmp = Path(tempfile.mkdtemp(prefix="bo-bench-ev-"))
        ids = []
        for i in range(N):
            path = tmp / f"marks{i}.csv"
            path.write_text("Student ID,maths\n" + "".join(f"S{j},{j}\n" for j in range(i + 2)))
            ids.append((await intake_file(db, settings, SYSTEM, path, source="Exams")).id)
        lags: list[float] = []
        published = 0
        async with events.subscribe(settings) as queue:
            daemon = start_daemon(write_config(settings, tmp / "config.toml"), tmp / "daemon.log")
            dispatcher = await Dispatcher.connect(db, settings)
            for upload_id in ids:
                await dispatcher.enqueue("process_upload", upload_id)
            await dispatcher.close()
            deadline = time.monotonic() + 600
            while published < N and time.monotonic() < deadline:
                event = await asyncio.wait_for(queue.get(), timeout=120)
                now = utcnow()
                if event.type != "upload.updated":
                    continue
                if event.stage and event.status == UploadStatus.PROCESSING.value:
                    lags.append((now - datetime.fromisoformat(event.at)).total_seconds() * 1000)
                if event.status in (UploadStatus.PUBLISHED.value, UploadStatus.PARTIAL.value):
                    published += 1
            stop_daemon(daemon)
    return bare, lags, published


async def main() -> int:
    print(f"{N} tiny uploads per row, one daemon process, subscriber in this process")
    print(f"{'path':<34} {'n':>5} {'p50 ms':>7} {'p99 ms':>7}")
    ok = True
    for max_jobs in (1, 10):
        bare, lags, published = await measure(max_jobs)
        ok = ok and published == N
        if max_jobs == 1:
            label = "bare redis publish→receive"
            print(
                f"{label:<34} {len(bare):>5} {statistics.median(bare):>7.2f} {pct(bare, 99):>7.2f}"
            )
        label = f"stage done → subscriber, max_jobs {max_jobs}"
        print(f"{label:<34} {len(lags):>5} {statistics.median(lags):>7.2f} {pct(lags, 99):>7.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
