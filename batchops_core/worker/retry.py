"""What is worth retrying unchanged, and how long to wait before the next try.

A *transient* failure (a dropped database or Redis connection, a lock timeout) may not meet a
later try of the same job; a data failure always will, so it becomes an incident instead and is
retried only with a changed configuration (a known error's remediation). A parse process that
crashed is its own upload's data incident (the pool isolates it), not a transient failure.
"""

from __future__ import annotations

import socket

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from batchops_core.errors import BatchOpsError, DatabaseUnavailable

RETRY_BACKOFF_SECONDS = 2.0
"""Base of the exponential backoff between tries of a transiently failing task."""


class TransientError(BatchOpsError):
    """A failure worth retrying unchanged later: a lost connection, a lock timeout."""


_TRANSIENT_DRIVER_ERRORS = {
    "ConnectionDoesNotExistError",
    "ConnectionFailureError",
    "CannotConnectNowError",
    "InterfaceError",
    "LockNotAvailableError",
    "DeadlockDetectedError",
    "SerializationError",
    "TooManyConnectionsError",
    "AdminShutdownError",
    "QueryCanceledError",
}


def is_transient(exc: BaseException) -> bool:
    """True for failures a later retry of the same job may not meet: connections and locks."""
    if isinstance(exc, TransientError | DatabaseUnavailable | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, PoolTimeout | InterfaceError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        if orig is not None and type(orig).__name__ in _TRANSIENT_DRIVER_ERRORS:
            return True
        if isinstance(exc, OperationalError):
            text = str(orig or exc).lower()
            return any(s in text for s in ("locked", "busy", "connection", "closed", "timeout"))
        return False
    if isinstance(exc, socket.gaierror):
        return True
    return isinstance(exc, RedisConnectionError | RedisTimeoutError)


def backoff_seconds(job_try: int, base: float = RETRY_BACKOFF_SECONDS) -> float:
    """Delay before try `job_try + 1`: base, 2×base, 4×base … capped at five minutes."""
    return float(min(300.0, base * 2 ** max(0, job_try - 1)))
