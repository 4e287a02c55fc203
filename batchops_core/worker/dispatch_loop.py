"""The schedule dispatcher: due `Job` rows in the database become `run_schedule` jobs.

Read from the database every `interval` seconds, so an edited or new schedule needs no restart.
Each due firing is claimed by `scheduler.advance_job` (a conditional UPDATE on `next_run_at`): of
several daemons only the one whose update matched enqueues it, and the deterministic arq job id
(`firing_job_id`) makes a second enqueue of the same firing a no-op as well. The claim and the
enqueue share one transaction: if the enqueue fails (Redis down), the claim rolls back and the
firing is retried on the next pass instead of being lost (a firing enqueued before the failure is
deduplicated by its job id, or by `run_schedule`'s check for a run of that firing). Due-ness is
judged on the database's clock, read once per pass, never this host's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime

from batchops_core.infra import events
from batchops_core.infra.clock import db_now
from batchops_core.infra.db import Database
from batchops_core.worker import scheduler
from batchops_core.worker.dispatcher import Dispatcher

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 1.0
CHUNK = 100


@dataclass
class DispatchReport:
    enqueued: list[tuple[int, datetime]] = field(default_factory=list)
    skipped: int = 0


async def dispatch_due(
    db: Database, dispatcher: Dispatcher, *, now: datetime | None = None
) -> DispatchReport:
    """Enqueue every due firing this process wins; return what it enqueued.

    Firings are claimed in chunks of `CHUNK`, one transaction each: a daemon that loses the race
    waits once on the winner's row locks and then finds every claim taken, instead of walking
    the same rows in lock-step with it. `now` defaults to the database's clock.
    """
    report = DispatchReport()
    async with db.unit() as session:
        now = now or await db_now(session)
        due = await scheduler.due_jobs(session, now)
    for start in range(0, len(due), CHUNK):
        won = []
        async with db.unit() as session:
            for firing in due[start : start + CHUNK]:
                if await scheduler.advance_job(
                    session, job_id=firing.job_id, fired_for=firing.scheduled_for, now=now
                ):
                    won.append(firing)
                else:
                    report.skipped += 1
            await asyncio.gather(*(dispatcher.run_schedule(f.job_id, f.scheduled_for) for f in won))
        report.enqueued.extend((f.job_id, f.scheduled_for) for f in won)
        for firing in won:
            await events.publish(
                dispatcher.settings,
                events.Event(
                    type="schedule.updated",
                    id=firing.job_id,
                    status="fired",
                    data={
                        "scheduled_for": firing.scheduled_for.isoformat(),
                        "lateness_seconds": round(firing.lateness_seconds, 3),
                    },
                ),
            )
    return report


async def run_dispatch_loop(
    db: Database,
    dispatcher: Dispatcher,
    *,
    interval: float = DEFAULT_INTERVAL,
    stop: asyncio.Event | None = None,
) -> None:
    """Dispatch due schedules until `stop` is set; a failing pass is logged and retried."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            report = await dispatch_due(db, dispatcher)
            if report.enqueued:
                log.info("dispatched %d schedule firing(s)", len(report.enqueued))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("schedule dispatch failed, will retry: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
