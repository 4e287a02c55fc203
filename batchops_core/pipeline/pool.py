"""One warm process pool per process for the pipeline's blocking work.

pandas, pdfplumber and fpdf2 hold the GIL for seconds; run on the event loop they would freeze
the TUI (embedded mode) and stall every other job of an arq worker. So every stage runs in a
`ProcessPoolExecutor`, created on first use and kept for the life of the process, so that the
~0.7 s `import pandas` is paid once per worker process, not once per upload.

The pool uses the *forkserver* start method: workers fork from a small clean server process that
preloads the pipeline modules, so they start warm and never inherit the parent's threads (asyncio,
aiosqlite, Textual) — forking a threaded process can deadlock the child.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")
PRELOAD = ["batchops_core.pipeline.stages", "batchops_core.pipeline.warm"]

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_pid: int | None = None
_pool_size = 0


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def default_size() -> int:
    return max(2, min(4, os.cpu_count() or 2))


def get_pool(max_workers: int | None = None) -> ProcessPoolExecutor:
    """The process's pool, created on first use (and again after a fork or a crash)."""
    global _pool, _pool_pid, _pool_size
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool_size = max_workers or default_size()
            _pool = ProcessPoolExecutor(max_workers=_pool_size, mp_context=_context())
            _pool_pid = os.getpid()
        return _pool


def _reset(broken: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is broken:
            _pool = None
    broken.shutdown(wait=False, cancel_futures=True)


async def run_in_pool(fn: Callable[..., T], /, *args: Any) -> T:
    """Run `fn(*args)` in the warm pool without blocking the event loop.

    A worker that died (killed, out of memory) breaks the pool: it is replaced for the next call
    and the error propagates so the task layer can record it.
    """
    pool = get_pool()
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(pool, fn, *args)
    except BrokenProcessPool:
        _reset(pool)
        raise


def _noop() -> int:
    return os.getpid()


async def warm_up() -> None:
    """Start the workers now (imports included) instead of on the first upload."""
    pool = get_pool()
    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(pool, _noop) for _ in range(_pool_size)))


def shutdown_pool(wait: bool = True) -> None:
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=wait, cancel_futures=True)
