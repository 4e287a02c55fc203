"""One warm pool of pipeline processes per process, where a task owns its process while it runs.

pandas, pdfplumber and fpdf2 hold the GIL for seconds; run on the event loop they would freeze
the TUI (embedded mode) and stall every other job of an arq worker. So every stage runs in a pool
process, started once and kept warm, so that the ~0.7 s `import pandas` is paid once per process,
not once per upload.

Why not `concurrent.futures.ProcessPoolExecutor`: when one of its processes dies, the executor is
*broken* and every pending future fails with BrokenProcessPool — one 4.7 KB workbook that aborted
calamine failed four good CSVs on other workers, each retried into the next break. And it cannot
stop one task: a timed-out job kept its process busy. Here a task *leases* one process for its
length (a pipe each, no shared queue), so:

* a process that dies (crash, abort, out-of-memory kill, the `RLIMIT_AS` cap) fails only the task
  it held, with `WorkerDied` naming its exit status; the process is replaced at once;
* a cancelled task (the job timeout) SIGKILLs its process, so the work really stops, and the
  process is replaced in the background;
* a pool process dies with its daemon (`pool_child.die_with_parent`).

Processes start with the *forkserver* method: they fork from a small clean server process that
preloads the pipeline modules, so they start warm and never inherit the parent's threads (asyncio,
aiosqlite, Textual) — forking a threaded process can deadlock the child.

State is guarded by a thread lock and waiting is done in the pool's own threads, never in asyncio
primitives, so one pool serves any event loop of the process (the TUI, the daemon, each test).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar, cast

from batchops_core.pipeline.limits import ParseLimits

T = TypeVar("T")
PRELOAD = [
    "batchops_core.pipeline.stages",
    "batchops_core.pipeline.warm",
    "batchops_core.pipeline.pool_child",
]
log = logging.getLogger(__name__)


class WorkerDied(Exception):
    """The pool process running a task ended before it answered."""

    def __init__(self, pid: int | None, exitcode: int | None, label: str = "") -> None:
        self.pid = pid
        self.exitcode = exitcode
        self.label = label
        super().__init__(f"pool process {pid} ({label or 'task'}) ended: {self.how}")

    @property
    def signal(self) -> signal.Signals | None:
        if self.exitcode is not None and self.exitcode < 0:
            with contextlib.suppress(ValueError):
                return signal.Signals(-self.exitcode)
        return None

    @property
    def how(self) -> str:
        sig = self.signal
        if sig is not None:
            return f"killed by {sig.name}"
        if self.exitcode is None:
            return "its answer could not be read"
        return f"exited with status {self.exitcode}"


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def default_size(stage_processes: int = 0) -> int:
    """`[pipeline] stage_processes` when set; else one process per core, at least 2, at most 4."""
    if stage_processes > 0:
        return stage_processes
    return max(2, min(4, os.cpu_count() or 2))


class _Process:
    """One pool process and the parent's end of its pipe."""

    def __init__(self, ctx: multiprocessing.context.BaseContext) -> None:
        from batchops_core.pipeline.pool_child import serve

        parent, child = ctx.Pipe()
        self.process = ctx.Process(  # type: ignore[attr-defined]
            target=serve, args=(child, os.getpid()), name="batchops-pipeline"
        )
        self.process.start()
        child.close()
        self.conn: Connection = parent
        self.pid: int = self.process.pid
        self.label = ""

    def alive(self) -> bool:
        return bool(self.process.is_alive())

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, OSError):
            os.kill(self.pid, signal.SIGKILL)

    def close(self, timeout: float = 5.0) -> None:
        """Reap the process (killed if it has not ended by `timeout`) and close the pipe."""
        self.process.join(timeout)
        if self.process.exitcode is None:
            self.kill()
            self.process.join(timeout)
        with contextlib.suppress(OSError):
            self.conn.close()


class ProcessPool:
    """Up to `size` warm processes, each leased to one task at a time (see the module docstring)."""

    def __init__(self, size: int | None = None) -> None:
        self.size = size or default_size()
        self._ctx = _context()
        self._lock = threading.Lock()
        self._idle: list[_Process] = []
        self._busy: dict[int, _Process] = {}
        self._waiters: deque[Future[_Process]] = deque()
        self._count = 0
        self._closed = False

    # ---------------------------------------------------------------- leasing

    def _lease(self) -> Future[_Process]:
        lease: Future[_Process] = Future()
        spawn = False
        with self._lock:
            if self._closed:
                raise RuntimeError("the pipeline pool is shut down")
            while self._idle:
                proc = self._idle.pop()
                if proc.alive():
                    lease.set_running_or_notify_cancel()
                    self._busy[proc.pid] = proc
                    lease.set_result(proc)
                    return lease
                self._count -= 1  # died while idle (killed from outside): replaced below
                _background(proc.close)
            self._waiters.append(lease)
            if self._count < self.size:
                self._count += 1
                spawn = True
        if spawn:
            _background(self._spawn)
        return lease

    def _give(self, proc: _Process) -> None:
        """Hand a free process to the oldest waiting task, or keep it idle."""
        with self._lock:
            self._busy.pop(proc.pid, None)
            proc.label = ""
            if self._closed:
                self._count -= 1
                _background(self._stop, proc)
                return
            while self._waiters:
                lease = self._waiters.popleft()
                if lease.set_running_or_notify_cancel():
                    self._busy[proc.pid] = proc
                    lease.set_result(proc)
                    return
            self._idle.append(proc)

    def _spawn(self) -> None:
        try:
            proc = _Process(self._ctx)
        except Exception as exc:
            log.error("could not start a pipeline process: %s", exc)
            with self._lock:
                self._count -= 1
                waiter = self._waiters.popleft() if self._waiters else None
            if waiter is not None and waiter.set_running_or_notify_cancel():
                waiter.set_exception(exc)
            return
        self._give(proc)

    def _retire(self, proc: _Process) -> None:
        """Reap a dead or killed process and start its replacement (runs in a pool thread)."""
        proc.close()
        with self._lock:
            self._busy.pop(proc.pid, None)
            self._count -= 1
            replace = not self._closed and self._count < self.size
            if replace:
                self._count += 1
        if replace:
            self._spawn()

    def _unlease(self, lease: Future[_Process]) -> None:
        """The task was cancelled while waiting: give back a process it may have just got."""
        with self._lock:
            if lease.cancel():
                return
        if lease.done() and lease.exception() is None:
            self._give(lease.result())

    # ---------------------------------------------------------------- running

    def _exchange(self, proc: _Process, task: tuple[Any, ...]) -> tuple[str, Any]:
        """Send one task and wait for its answer or its process's death (in a pool thread)."""
        try:
            proc.conn.send(task)
            ready = wait([proc.conn, proc.process.sentinel])
            if proc.conn in ready:
                return cast(tuple[str, Any], proc.conn.recv())
        except (EOFError, OSError):
            pass
        except Exception:  # an answer that does not unpickle: the pipe is out of step
            proc.kill()
            proc.process.join(5)
            raise WorkerDied(proc.pid, None, proc.label) from None
        proc.process.join(5)
        raise WorkerDied(proc.pid, proc.process.exitcode, proc.label)

    def _after_kill(self, proc: _Process, exchange: Future[tuple[str, Any]]) -> None:
        with contextlib.suppress(BaseException):
            exchange.result()
        self._retire(proc)

    async def run(
        self,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        *,
        limits: ParseLimits | None = None,
        label: str = "",
    ) -> T:
        lease = self._lease()
        try:
            proc = await asyncio.wrap_future(lease)
        except asyncio.CancelledError:
            self._unlease(lease)
            raise
        proc.label = label or getattr(fn, "__name__", "task")
        exchange = _background(self._exchange, proc, (fn, args, limits))
        try:
            kind, value = await asyncio.wrap_future(exchange)
        except asyncio.CancelledError:
            # the job timeout (or shutdown): stop the work itself, not only the waiting for it
            proc.kill()
            _background(self._after_kill, proc, exchange)
            raise
        except WorkerDied:
            _background(self._retire, proc)
            raise
        except Exception:  # the task did not pickle: nothing was sent, the process is fine
            self._give(proc)
            raise
        self._give(proc)
        if kind == "error":
            raise value
        return cast(T, value)

    def busy(self) -> dict[int, str]:
        """pid → label of the processes running a task now (status screens and tests)."""
        with self._lock:
            return {pid: proc.label for pid, proc in self._busy.items()}

    def pids(self) -> list[int]:
        with self._lock:
            return [p.pid for p in self._idle] + list(self._busy)

    async def warm_up(self) -> None:
        """Start every process now (and the fork server with its imports)."""
        await asyncio.gather(*(self.run(os.getpid, ()) for _ in range(self.size)))

    # ---------------------------------------------------------------- stopping

    def _stop(self, proc: _Process) -> None:
        with contextlib.suppress(OSError):
            proc.conn.send(None)
        proc.close(timeout=2.0)

    def shutdown(self, wait: bool = True) -> None:
        """Stop the idle processes cleanly and kill the busy ones (their tasks fail)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = list(self._busy.values())
            waiters, self._waiters = list(self._waiters), deque()
            self._count -= len(idle)
        for lease in waiters:
            lease.cancel()
        for proc in busy:
            proc.kill()
        stops = [_background(self._stop, proc) for proc in idle]
        if wait:
            for stop in stops:
                stop.exception()


def _background(fn: Callable[..., T], *args: Any) -> Future[T]:
    """Run `fn` in a daemon thread: waiting on a busy process must never hold up interpreter exit
    (an executor's threads are joined at exit, before atexit handlers could kill the process)."""
    done: Future[T] = Future()
    done.set_running_or_notify_cancel()

    def body() -> None:
        try:
            done.set_result(fn(*args))
        except BaseException as exc:
            done.set_exception(exc)

    threading.Thread(target=body, name="pipeline-pool", daemon=True).start()
    return done


_lock = threading.Lock()
_pool: ProcessPool | None = None
_pool_pid: int | None = None
_stage_processes = 0


def configure_pool(stage_processes: int) -> None:
    """Size this process's pool from `[pipeline] stage_processes` (0 = `default_size()`).

    Called where a worker gets its settings, before the first stage runs; a pool that already
    exists takes the new size as its limit (it grows on demand; surplus processes stay until
    they end).
    """
    global _stage_processes
    with _lock:
        _stage_processes = stage_processes
        if _pool is not None and _pool_pid == os.getpid():
            _pool.size = default_size(stage_processes)


def get_pool(max_workers: int | None = None) -> ProcessPool:
    """The process's pool, created on first use (and again after a fork)."""
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ProcessPool(max_workers or default_size(_stage_processes))
            _pool_pid = os.getpid()
        return _pool


async def run_in_pool(
    fn: Callable[..., T], /, *args: Any, limits: ParseLimits | None = None, label: str = ""
) -> T:
    """Run `fn(*args)` in a leased pool process without blocking the event loop.

    Raises what `fn` raised, or `WorkerDied` when the process ended first (it is replaced for the
    next call). Cancelling the call kills the process running it.
    """
    return await get_pool().run(fn, args, limits=limits, label=label)


async def warm_up() -> None:
    """Start the processes now (imports included) instead of on the first upload."""
    await get_pool().warm_up()


def shutdown_pool(wait: bool = True) -> None:
    global _pool
    with _lock:
        pool, _pool = _pool, None
        owned = _pool_pid == os.getpid()
    if pool is not None and owned:
        pool.shutdown(wait=wait)


atexit.register(shutdown_pool, False)
