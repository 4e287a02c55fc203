"""Worker liveness from signals that die with the process, so that recovery takes seconds.

The database heartbeat (every `heartbeat_seconds`) proves little about a worker that died a
second ago and stops during a database outage, when the worker is fine. So every worker process
also sets `<prefix>:alive:<name>` every `LIVENESS_EVERY` seconds with a TTL of `LIVENESS_TTL`;
its value lists what the worker is executing (uploads, runs, arq job ids). A SIGKILL stops the
refresh and the key is gone within the TTL, whatever `job_timeout` is. On the worker's own host
the PID answers at once (a process that is gone, or a zombie, is dead).

A sweeper trusts the *absence* of a key only once its own Redis connection has been up for a TTL:
a restarted Redis holds no keys until the live workers set theirs again. Without Redis and on
another host the verdict is UNKNOWN, and the sweeper falls back to the database heartbeat.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from batchops_core.infra.config import Settings

if TYPE_CHECKING:
    from batchops_core.worker.heartbeat import WorkTracker

log = logging.getLogger(__name__)

LIVENESS_EVERY = 1.0
"""Seconds between two refreshes of a worker's liveness key."""
LIVENESS_TTL = 4
"""Seconds a liveness key outlives its last refresh: a killed worker is known dead after this."""


def alive_key(settings: Settings, name: str) -> str:
    return f"{settings.redis.prefix}:alive:{name}"


def redis_client(settings: Settings) -> Redis:
    """A small client of our own with short timeouts: liveness must not wait behind arq."""
    timeout = settings.redis.connect_timeout
    return Redis.from_url(
        settings.redis.url, socket_connect_timeout=timeout, socket_timeout=timeout
    )


_NAME = re.compile(r"[^@]*@(?P<host>.+?):(?P<pid>\d+)(?::[0-9a-f]{8})?")


def parse_name(name: str) -> tuple[str, int | None]:
    """(host, pid) of a worker name `<kind>@<host>:<pid>:<instance>` (the instance id is
    optional: names written before it existed); pid None when it has none."""
    match = _NAME.fullmatch(name)
    if match is None:
        return name.partition("@")[2], None
    return match["host"], int(match["pid"])


def process_alive(pid: int) -> bool:
    """Whether a process with this PID exists on this host and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            state = handle.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


class Life(StrEnum):
    ALIVE = "alive"
    DEAD = "dead"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Verdict:
    life: Life
    uploads: frozenset[int] | None = None
    """What the worker said it executes at its last refresh; None when not known."""
    runs: frozenset[int] | None = None
    jobs: frozenset[str] | None = None

    def holds(self, *, upload_id: int | None, run_id: int) -> bool | None:
        """Whether the worker holds this run (None: cannot tell)."""
        if self.uploads is None or self.runs is None:
            return None
        return run_id in self.runs or (upload_id is not None and upload_id in self.uploads)


class LivenessBeat:
    """Refreshes this worker's liveness key every second, independent of the database."""

    def __init__(self, settings: Settings, name: str, tracker: WorkTracker) -> None:
        self.settings = settings
        self.name = name
        self.tracker = tracker
        self.redis: Redis | None = redis_client(settings) if settings.uses_redis else None
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def value(self) -> str:
        t = self.tracker
        return json.dumps(
            {"uploads": sorted(t.uploads), "runs": sorted(t.runs), "jobs": sorted(t.jobs)}
        )

    async def beat(self) -> None:
        if self.redis is None:
            return
        try:
            await self.redis.set(alive_key(self.settings, self.name), self.value(), ex=LIVENESS_TTL)
        except Exception as exc:  # Redis down: said once, the daemon's outage log says the rest
            if not self._failing:
                log.info("liveness key of %s not refreshed (Redis: %s)", self.name, exc)
            self._failing = True
        else:
            self._failing = False

    def start(self) -> None:
        if self.redis is not None and self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"liveness:{self.name}")

    async def _loop(self) -> None:
        while True:
            await self.beat()
            await asyncio.sleep(LIVENESS_EVERY)

    async def stop(self, *, remove: bool = True) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.redis is None:
            return
        if remove:
            try:
                await self.redis.delete(alive_key(self.settings, self.name))
            except Exception as exc:
                log.info("could not remove the liveness key of %s: %s", self.name, exc)
        await self.redis.aclose()
        self.redis = None


class LivenessJudge:
    """Tells a sweeper which workers are alive, dead, or unknown, and what they hold."""

    def __init__(self, settings: Settings, redis: Redis | None = None) -> None:
        self.settings = settings
        self.redis, self._own = redis, False
        if redis is None and settings.uses_redis:
            self.redis, self._own = redis_client(settings), True
        self.host = socket.gethostname()
        self._redis_up_since: float | None = None
        self.redis_trusted_after = float(LIVENESS_TTL) + LIVENESS_EVERY

    @property
    def redis_trusted(self) -> bool:
        """Redis answered continuously for long enough that a missing key means a dead worker."""
        up = self._redis_up_since
        return up is not None and time.monotonic() - up >= self.redis_trusted_after

    async def _keys(self, names: list[str]) -> list[bytes | None] | None:
        if self.redis is None:
            return None
        try:
            values = await self.redis.mget([alive_key(self.settings, n) for n in names])
        except Exception:
            self._redis_up_since = None
            return None
        if self._redis_up_since is None:
            self._redis_up_since = time.monotonic()
        return list(values)

    async def check_redis(self) -> bool:
        """Ping Redis to keep the continuity clock running; False when it does not answer."""
        return await self._keys(["-"]) is not None

    async def judge(self, names: Iterable[str]) -> dict[str, Verdict]:
        wanted = sorted(set(names))
        values = await self._keys(wanted) if wanted else None
        trusted = values is not None and self.redis_trusted
        verdicts: dict[str, Verdict] = {}
        for i, name in enumerate(wanted):
            host, pid = parse_name(name)
            local_dead = host == self.host and pid is not None and not process_alive(pid)
            raw = values[i] if values is not None else None
            if local_dead:
                verdicts[name] = Verdict(Life.DEAD)
            elif raw is not None:
                verdicts[name] = _held(raw)
            elif trusted:
                verdicts[name] = Verdict(Life.DEAD)
            elif host == self.host and pid is not None:
                verdicts[name] = Verdict(Life.ALIVE)
            else:
                verdicts[name] = Verdict(Life.UNKNOWN)
        return verdicts

    async def close(self) -> None:
        if self._own and self.redis is not None:
            await self.redis.aclose()
            self.redis = None


def _held(raw: bytes | str) -> Verdict:
    try:
        data = json.loads(raw)
        return Verdict(
            Life.ALIVE,
            uploads=frozenset(int(u) for u in data.get("uploads", [])),
            runs=frozenset(int(r) for r in data.get("runs", [])),
            jobs=frozenset(str(j) for j in data.get("jobs", [])),
        )
    except (ValueError, TypeError, AttributeError):
        return Verdict(Life.ALIVE)
