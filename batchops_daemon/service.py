"""The long-running daemon: an arq worker (or, without Redis, a database-polling worker) plus
the loops every daemon runs: heartbeat, sweeper, schedule dispatcher, metrics, systemd watchdog.

Shutdown on SIGTERM/SIGINT/SIGHUP is ours, not arq's: stop taking jobs, give running jobs up to
`worker.shutdown_grace` seconds, then cancel the rest — a cancelled upload is handed back to
`queued` in the database and arq re-queues its job at once — and exit 0.

Outages are lived through, not exited on. arq's worker ends when Redis drops (arq #435): the
daemon logs "Redis unreachable since …" once, lets the jobs in hand finish, pings every second
and starts a fresh arq worker on the same pool when Redis answers. A database outage stops the
taking of jobs (and holds jobs that were taken) until `SELECT 1` answers again; loops skip their
passes meanwhile instead of logging a traceback a second. The sweeper runs every second with
liveness (`worker/liveness.py`), so a dead worker's work runs again within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from arq import ArqRedis, create_pool
from arq.worker import Worker
from redis.exceptions import RedisError

from batchops_core.infra import events
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.infra.metrics import Metrics
from batchops_core.services.status import metric_figures, queued_uploads
from batchops_core.sources.health import SourceMetrics
from batchops_core.worker.arq_settings import arq_redis_settings, queue_name
from batchops_core.worker.context import TaskContext
from batchops_core.worker.dispatch_loop import run_dispatch_loop
from batchops_core.worker.dispatcher import Dispatcher
from batchops_core.worker.heartbeat import Heartbeat, worker_name
from batchops_core.worker.liveness import LivenessJudge
from batchops_core.worker.outages import OutageLog, Service
from batchops_core.worker.sweeper import SweepState, sweep_once
from batchops_daemon import instance, systemd
from batchops_daemon.jobs import BACKOFF_KEY, CTX_KEY, READY_KEY, arq_functions

log = logging.getLogger(__name__)

SWEEP_EVERY = 1.0
"""Seconds between sweeps: with liveness, a dead worker's uploads run again within ~5 s."""
WATCH_EVERY = 1.0
"""Seconds between two checks of the database (and of Redis while it is away)."""
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def is_redis_failure(exc: BaseException) -> bool:
    return isinstance(exc, RedisError | OSError | TimeoutError | ConnectionError)


def worker_settings(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """arq Worker keyword arguments built from the BatchOps settings.

    `keep_result=0`: the database is the record, Redis keeps no results (and a finished job id
    can be enqueued again, which the sweeper relies on). arq's own signal handling is off.
    """
    w = settings.worker
    kwargs: dict[str, Any] = {
        "functions": arq_functions(w.job_timeout),
        "queue_name": queue_name(settings),
        "redis_settings": arq_redis_settings(settings),
        "poll_delay": w.poll_delay,
        "max_jobs": w.max_jobs,
        "job_timeout": w.job_timeout + 30,
        "max_tries": w.max_tries,
        "keep_result": 0,
        "health_check_interval": w.health_interval,
        "health_check_key": f"{settings.redis.prefix}:arq-health",
        "handle_signals": False,
        "log_results": False,
    }
    kwargs.update(overrides)
    return kwargs


class Daemon:
    """One daemon process: its worker identity, its loops, and its stop signal."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        name: str | None = None,
        retry_backoff: float = 2.0,
        schedule_interval: float = 1.0,
        metrics_port: int | None = None,
        warm_pool: bool = False,
    ) -> None:
        self.settings = settings
        self.db = db
        self.name = name or worker_name("daemon")
        self.retry_backoff = retry_backoff
        self.schedule_interval = schedule_interval
        self.metrics_port = settings.worker.metrics_port if metrics_port is None else metrics_port
        self.stop_event = asyncio.Event()
        self.warm_pool = warm_pool
        self.dispatcher: Dispatcher | None = None
        self.heartbeat: Heartbeat | None = None
        self.metrics = Metrics()
        self.source_metrics = SourceMetrics(self.metrics.registry)
        self.bound_metrics_port: int | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._redis: ArqRedis | None = None
        self._stopped = False
        self.outages = OutageLog(settings, db)
        self.sweep_state = SweepState()
        self.db_up = asyncio.Event()
        self.db_up.set()
        self._worker: Worker | None = None
        self._failing: set[str] = set()

    # ------------------------------------------------------------------ shared loops

    async def start(self, pool: ArqRedis | None) -> TaskContext:
        """Build the dispatcher and task context and start the background loops."""
        self._redis = pool
        self.dispatcher = Dispatcher(
            self.db,
            self.settings,
            pool,
            worker=self.name,
            owns_pool=False,
            retry_backoff=self.retry_backoff,
            heartbeat=False,
        )
        self.heartbeat = Heartbeat(
            self.db, self.settings, self.name, tracker=self.dispatcher.tracker, redis=pool
        )
        await self.heartbeat.beat()  # warns at once when this host's clock is off
        self.heartbeat.start()
        instance.register(self.settings, self.name)
        if self.metrics_port >= 0:
            try:
                self.bound_metrics_port = self.metrics.serve(
                    self.settings.worker.metrics_host, self.metrics_port
                )
                log.info(
                    "metrics on http://%s:%s/metrics",
                    self.settings.worker.metrics_host,
                    self.bound_metrics_port,
                )
            except OSError as exc:
                log.warning("metrics not served on port %s: %s", self.metrics_port, exc)
        every = float(self.settings.worker.heartbeat_seconds)
        judge = LivenessJudge(self.settings)
        self.sweep_state.judge = judge
        self.outages.redis = judge.redis
        self._spawn("database-watch", self._every(WATCH_EVERY, self._watch_database))
        self._spawn("sweeper", self._every(SWEEP_EVERY, self._sweep))
        self._spawn("metrics", self._every(every, self._refresh_metrics))
        self._spawn(
            "schedules",
            run_dispatch_loop(
                self.db, self.dispatcher, interval=self.schedule_interval, stop=self.stop_event
            ),
        )
        if self.warm_pool:
            self._spawn("warm-up", self._warm_up())
        interval = systemd.watchdog_interval()
        if interval:
            self._spawn("watchdog", self._every(interval, self._watchdog))
        return self.dispatcher.context

    def _spawn(self, name: str, work: Awaitable[None]) -> None:
        self._loops.append(asyncio.create_task(work, name=f"{self.name}:{name}"))  # type: ignore[arg-type]

    async def _every(self, seconds: float, step: Callable[[], Awaitable[None]]) -> None:
        name = getattr(step, "__name__", "loop").strip("_")
        while not self.stop_event.is_set():
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one failed pass must not end the loop; said once a streak
                if name not in self._failing:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    log.warning("%s failed: %s", name, first or type(exc).__name__)
                self._failing.add(name)
            else:
                self._failing.discard(name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), timeout=seconds)

    async def _watch_database(self) -> None:
        """`SELECT 1` every second: an outage stops job taking; its end resumes it."""
        timeout = self.settings.database.connect_timeout + 1
        try:
            await asyncio.wait_for(self.db.check(), timeout=timeout)
        except Exception as exc:
            await self.outages.down(Service.DATABASE, exc)
            self.db_up.clear()
            if self._worker is not None:
                self._worker.allow_pick_jobs = False
            return
        if await self.outages.up(Service.DATABASE):
            self.sweep_state.database_back(self.settings)
        self.db_up.set()
        if self._worker is not None and not self.stop_event.is_set():
            self._worker.allow_pick_jobs = True

    async def _sweep(self) -> None:
        if not self.db_up.is_set():
            return
        redis_away = self.outages.since(Service.REDIS) is not None
        dispatcher = None if redis_away else self.dispatcher
        await sweep_once(self.db, self.settings, dispatcher, state=self.sweep_state)

    async def _refresh_metrics(self) -> None:
        if not self.db_up.is_set():
            return
        depth = None
        if self._redis is not None:
            with contextlib.suppress(Exception):
                depth = int(await self._redis.zcard(queue_name(self.settings)))
        elif self.dispatcher is not None:
            depth = self.dispatcher.running
        metrics = self.metrics
        async with self.db.unit() as session:
            figures = await metric_figures(
                session, self.settings, after_step=metrics.after_step, after_run=metrics.after_run
            )
        metrics.record(figures, depth)
        await self.source_metrics.refresh(self.db, self.settings)

    async def _warm_up(self) -> None:
        """Start the pipeline's process pool now, so the first upload does not pay the imports."""
        try:
            from batchops_core.pipeline.pool import warm_up

            await warm_up()
        except Exception as exc:
            log.warning("could not warm the pipeline pool: %s", exc)

    async def _watchdog(self) -> None:
        systemd.notify("WATCHDOG=1")

    async def stop_loops(self) -> None:
        """Stop the loops, remove this worker's heartbeat, close metrics. Idempotent."""
        self.stop_event.set()
        if self._stopped:
            return
        self._stopped = True
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()
        if self.heartbeat is not None:
            await self.heartbeat.stop()
            instance.unregister(self.settings, self.name)
        if self.dispatcher is not None:
            await self.dispatcher.close()
        if self.sweep_state.judge is not None:
            await self.sweep_state.judge.close()
        self.metrics.close()

    def request_stop(self, signum: int | None = None) -> None:
        if not self.stop_event.is_set():
            log.info(
                "stopping (signal %s): no new jobs; grace %s s",
                signum,
                self.settings.worker.shutdown_grace,
            )
            systemd.notify("STOPPING=1")
            self.stop_event.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self.request_stop, sig)

    # ------------------------------------------------------------------ arq mode

    async def run_arq(self, **overrides: Any) -> int:
        """Run arq workers until stopped, a fresh one after each Redis outage; 0 after a clean
        stop, 1 if the worker failed for another reason."""
        daemon = self

        async def on_startup(ctx: dict[str, Any]) -> None:
            first = daemon.dispatcher is None
            ctx[CTX_KEY] = await daemon.start(ctx["redis"]) if first else daemon.dispatcher.context
            ctx[BACKOFF_KEY] = daemon.retry_backoff
            ctx[READY_KEY] = daemon.db_up
            if first:
                status = f"STATUS=worker {daemon.name} on {queue_name(daemon.settings)}"
                systemd.notify(f"READY=1\n{status}")

        pool = await create_pool(
            arq_redis_settings(self.settings), default_queue_name=queue_name(self.settings)
        )
        workers: list[Worker] = []
        status = 0
        while not self.stop_event.is_set():
            kwargs = worker_settings(
                self.settings, redis_pool=pool, on_startup=on_startup, **overrides
            )
            worker = Worker(**kwargs)
            worker.allow_pick_jobs = self.db_up.is_set()
            workers.append(worker)
            self._worker = worker
            failure = await self._run_until_stop(worker)
            if failure is None:
                break
            if not is_redis_failure(failure):
                log.error("the worker stopped: %s", failure)
                status = 1
                break
            await self.outages.down(Service.REDIS, failure)
            if await self._wait_for_redis(pool):
                await self.outages.up(Service.REDIS)
        for worker in workers:
            worker.allow_pick_jobs = False
        await self._drain(lambda: sum(not t.done() for w in workers for t in w.tasks.values()))
        await self._close_workers(workers, pool)
        return status

    async def _run_until_stop(self, worker: Worker) -> BaseException | None:
        """Run one arq worker until the daemon stops (None) or the worker fails (its error)."""
        main = asyncio.create_task(worker.main())
        worker.main_task = main
        stopper = asyncio.create_task(self.stop_event.wait())
        done, _ = await asyncio.wait({main, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if main not in done:
            return None
        stopper.cancel()
        return None if main.cancelled() else main.exception()

    async def _wait_for_redis(self, pool: ArqRedis) -> bool:
        """Ping every second until Redis answers (True) or the daemon stops (False)."""
        timeout = self.settings.redis.connect_timeout + 1
        while not self.stop_event.is_set():
            try:
                await asyncio.wait_for(pool.ping(), timeout=timeout)
                return True
            except Exception:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop_event.wait(), timeout=WATCH_EVERY)
        return False

    async def _close_workers(self, workers: list[Worker], pool: ArqRedis) -> None:
        """arq's `Worker.close` minus its deprecated pool close and shared health-key delete."""
        for worker in workers:
            for task in worker.tasks.values():
                if not task.done():
                    task.cancel()  # arq re-queues a cancelled job; the core hands its upload back
            if worker.main_task is not None:
                worker.main_task.cancel()
        for worker in workers:
            await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
            if worker.main_task is not None:
                await asyncio.gather(worker.main_task, return_exceptions=True)
        await self.stop_loops()
        with contextlib.suppress(Exception):
            await pool.aclose()

    async def _drain(self, running: Callable[[], int]) -> None:
        deadline = time.monotonic() + self.settings.worker.shutdown_grace
        while running() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        left = running()
        if left:
            log.warning("grace over: handing back %d running job(s)", left)

    # ------------------------------------------------------------------ no-Redis mode

    async def run_polling(self) -> int:
        """Without Redis: claim queued uploads from the database and run them in process."""
        ctx = await self.start(None)
        assert self.dispatcher is not None
        systemd.notify(f"READY=1\nSTATUS=in-process worker {ctx.worker} (no Redis)")
        in_flight: dict[int, asyncio.Task[Any]] = {}
        limit = self.settings.worker.max_jobs
        poll = max(self.settings.worker.poll_delay, 0.5)
        while not self.stop_event.is_set():
            for upload_id in [u for u, t in in_flight.items() if t.done()]:
                del in_flight[upload_id]
            if len(in_flight) < limit and self.db_up.is_set():
                try:
                    async with self.db.unit() as session:
                        queued = [i for i, _ in await queued_uploads(session, limit=limit * 2)]
                except Exception:  # the database watch says it once
                    queued = []
                for upload_id in queued:
                    if upload_id in in_flight or len(in_flight) >= limit:
                        continue
                    in_flight[upload_id] = asyncio.create_task(
                        self.dispatcher.process_upload_now(upload_id)
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), timeout=poll)
        dispatcher = self.dispatcher
        await self._drain(lambda: dispatcher.running)
        await dispatcher.cancel_running()
        await self.stop_loops()
        await events.close()
        return 0
