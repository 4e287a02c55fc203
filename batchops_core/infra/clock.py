"""The two clocks: this host's (`utcnow`) and the database's (`db_now`), always aware UTC.

Daemons run on several hosts against one database, and host clocks drift: a host 90 s ahead
once declared another host's live run lost and fired a schedule early. So every time that
another host compares — heartbeats, liveness and sweep cut-offs, schedule firings — is the
database's clock, read once per tick (`db_now`). `utcnow` stays for what only this host reads
(log lines, file names, durations). `measure_skew` says how far this host's clock is off, so
that `doctor`, `status` and the daemon can tell an operator to fix NTP; decisions never depend
on it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the TUI imports this module before its sign-in screen: keep it light
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

_SQLITE_NOW = "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"
_POSTGRES_NOW = "SELECT clock_timestamp()"


_offset_seconds = 0.0
"""Host minus database, as last measured in this process (each heartbeat measures it)."""


def shared_now() -> datetime:
    """The database's clock without a round trip: this host's clock corrected by the skew last
    measured. For times other hosts compare that are written in batches (a run's start)."""
    return utcnow() - timedelta(seconds=_offset_seconds)


def utcnow() -> datetime:
    """This host's clock: for what no other host compares."""
    return datetime.now(UTC)


async def db_now(session: AsyncSession | AsyncConnection) -> datetime:
    """The database's clock, one round trip: the time every host agrees on.

    PostgreSQL's `clock_timestamp()` (not `now()`, which stands still for a transaction);
    SQLite's `'now'` is UTC text with milliseconds.
    """
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import AsyncSession

    conn = await session.connection() if isinstance(session, AsyncSession) else session
    if conn.dialect.name == "sqlite":
        raw = (await conn.execute(text(_SQLITE_NOW))).scalar_one()
        return datetime.fromisoformat(str(raw)).replace(tzinfo=UTC)
    value = (await conn.execute(text(_POSTGRES_NOW))).scalar_one()
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Skew:
    """How far this host's clock is from the database's, and the database time it was read at."""

    seconds: float
    """Host minus database: positive when this host runs ahead."""
    round_trip: float
    db_time: datetime

    def exceeds(self, limit: float) -> bool:
        return abs(self.seconds) > limit

    def describe(self, host: str) -> str:
        """`host-a's clock is 90.2 s ahead of the database's` (or behind)."""
        way = "ahead of" if self.seconds >= 0 else "behind"
        return f"{host}'s clock is {abs(self.seconds):.1f} s {way} the database's"


SKEW_ADVICE = (
    "keep this host's clock synchronised (enable NTP: chrony, or systemd-timesyncd with "
    "`timedatectl set-ntp true`); decisions use the database's clock meanwhile"
)


async def measure_skew(session: AsyncSession | AsyncConnection) -> Skew:
    """Host clock minus database clock over one round trip, the host's reading taken at its
    midpoint (half the round trip after the request left), so network delay is not skew."""
    from sqlalchemy.ext.asyncio import AsyncSession

    conn = await session.connection() if isinstance(session, AsyncSession) else session
    started = time.monotonic()
    host_before = utcnow()
    db_time = await db_now(conn)
    round_trip = time.monotonic() - started
    host_mid = host_before + timedelta(seconds=round_trip / 2)
    skew = Skew((host_mid - db_time).total_seconds(), round_trip, db_time)
    global _offset_seconds
    _offset_seconds = skew.seconds
    return skew
