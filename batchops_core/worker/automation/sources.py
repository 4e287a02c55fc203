"""Automation bodies of the Sources package: thin frames over its services, as the system actor.

Seeded schedules (migration 0006; UTC or the school's zone):

* `sync_sources(run, kind=None)` — every 15 minutes, `*/15 * * * *`: database sources read
  what is new, http sources fetch today (succeeded days are skipped), folders take new files.
* `settle_source_jobs(run)` — every 5 minutes, `*/5 * * * *`: a safety net that completes jobs
  whose uploads finished while nobody waited (the worker's upload hook is the fast path).
* `check_missing_sources(run, days=14)` — weekdays at 08:00, `0 8 * * 1-5`: alerts per source.
* `run_missing_sources(run, days=7)` — nightly at 02:30, `30 2 * * *`: `missing --run`.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from batchops_core.enums import RunStatus
from batchops_core.permissions import SYSTEM
from batchops_core.sources.cadence import today
from batchops_core.sources.health import alert_missing, settle_processing
from batchops_core.sources.missing import run_missing
from batchops_core.sources.models import Source
from batchops_core.sources.sync import sync_source
from batchops_core.worker.automation.frame import AutomationRun, Outcome
from batchops_core.worker.automation.registry import ArgSpec, automation


@automation(
    "Sync every enabled source (or those of one kind): new rows, today's files, new drops.",
    ArgSpec("kind", str, False, "database, http or folder (default: all)"),
)
async def sync_sources(run: AutomationRun, kind: str | None = None) -> Outcome:
    ctx = run.ctx
    async with ctx.db.unit() as uow:
        query = select(Source.name).where(Source.enabled.is_(True)).order_by(Source.name)
        if kind:
            query = query.where(Source.kind == kind)
        names = list(await uow.scalars(query))
    rows, failed = 0, []
    for name in names:
        report = await sync_source(
            ctx.db, ctx.settings, actor=SYSTEM, name=name, wait=False, dispatcher=ctx.dispatcher
        )
        rows += report.rows
        if not report.ok:
            failed.append(name)
        run.info(f"{name}: {report.rows} rows" + (f"; {report.error}" if report.error else ""))
    if not names:
        return Outcome(RunStatus.SKIPPED, "no enabled sources", {"sources": 0})
    return Outcome(
        RunStatus.SUCCEEDED,
        f"{len(names)} source(s) synced, {len(failed)} failing",
        {"sources": len(names), "failing": failed},
        rows,
    )


@automation("Complete source jobs whose uploads finished while nobody waited (a safety net).")
async def settle_source_jobs(run: AutomationRun) -> Outcome:
    counts = await settle_processing(run.ctx.db, run.ctx.settings)
    if not counts:
        return Outcome(RunStatus.SKIPPED, "no source job waiting for its uploads", {})
    return Outcome(RunStatus.SUCCEEDED, f"settled: {counts}", counts)


@automation(
    "Open or update one incident per source missing expected days, and mail its contact.",
    ArgSpec("days", int, False, "how many days back to look", minimum=1),
)
async def check_missing_sources(run: AutomationRun, days: int = 14) -> Outcome:
    counts = await alert_missing(run.ctx.db, run.ctx.settings, days)
    status = RunStatus.SUCCEEDED if counts else RunStatus.SKIPPED
    return Outcome(
        status, f"{sum(counts.values())} missing day(s) in {len(counts)} source(s)", counts
    )


@automation(
    "Queue a job for every missing (source, day) of the last days.",
    ArgSpec("days", int, False, "how many days back to run", minimum=1),
)
async def run_missing_sources(run: AutomationRun, days: int = 7) -> Outcome:
    end = today(run.ctx.settings.timezone) - timedelta(days=1)
    missing, reports = await run_missing(
        run.ctx.db,
        run.ctx.settings,
        actor=SYSTEM,
        start=end - timedelta(days=days - 1),
        end=end,
        wait=False,
        dispatcher=run.ctx.dispatcher,
    )
    if not missing:
        return Outcome(RunStatus.SKIPPED, "no missing days", {})
    return Outcome(
        RunStatus.SUCCEEDED,
        f"{len(missing)} missing day(s) queued in {len(reports)} source(s)",
        {"sources": [r.source for r in reports]},
    )
