"""The child side of the pipeline pool: one process, one task at a time, dies with its daemon.

A pool process reads `(fn, args, limits)` from its pipe, runs `fn(*args)` under the limits
(`limits.applied`: current limits plus an address-space cap) and answers `("ok", value)` or
`("error", exception)`. It never outlives the daemon that started it: on Linux the kernel sends it
SIGKILL when its parent dies (PR_SET_PDEATHSIG; with the forkserver start method that parent is the
fork server, which exits as soon as the daemon's end of its pipe closes), and a watch thread ends
it when its parent changes or the daemon's process is gone — also covering systems without prctl.
A SIGKILLed daemon would otherwise leave 500–800 MB pool processes running for minutes.

The watch on the daemon itself is needed: every child of a fork server holds the server's "alive"
pipe open (so that it may start processes of its own), so the server outlives its client as long
as one child lives, and the children's parent — the server — never dies. Watching the owner
breaks that circle: children end, then the server sees EOF and ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from batchops_core.pipeline.limits import ParseLimits, applied

PR_SET_PDEATHSIG = 1
WATCH_EVERY = 0.5


def _set_pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False
    except (OSError, IndexError):
        pass  # no /proc: ask the kernel whether the pid exists
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch(parent: int, owner: int | None) -> None:
    while True:
        time.sleep(WATCH_EVERY)
        if os.getppid() != parent or (owner is not None and not _alive(owner)):
            os.kill(os.getpid(), signal.SIGKILL)


def die_with_parent(owner: int | None = None) -> None:
    """Make this process end when its parent (or `owner`, the daemon) ends; see the docstring.

    Also the initializer of the PDF page workers, which are children of a pool process.
    """
    parent = os.getppid()
    _set_pdeathsig()
    if parent == 1 or (owner is not None and not _alive(owner)):
        os.kill(os.getpid(), signal.SIGKILL)  # the parent died before prctl took effect
    threading.Thread(target=_watch, args=(parent, owner), name="parent-watch", daemon=True).start()


def _picklable(exc: BaseException) -> BaseException:
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {str(exc)[:500]}")


def serve(conn: Connection, owner: int) -> None:
    """The pool process's loop (the `Process` target); ends on EOF or a `None` task."""
    die_with_parent(owner)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal reaches the daemon only
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        fn, args, limits = task
        answer: tuple[str, Any]
        try:
            with applied(limits if isinstance(limits, ParseLimits) else None):
                answer = ("ok", fn(*args))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller
            answer = ("error", _picklable(exc))
        try:
            conn.send(answer)
        except Exception as exc:  # an unpicklable result
            with contextlib.suppress(Exception):
                conn.send(("error", RuntimeError(f"the result could not be sent back: {exc}")))
