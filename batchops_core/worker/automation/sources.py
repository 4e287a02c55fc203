"""Scheduled bodies of the sources package, for the lead to wire into the task table.

Plain `async def body(run, **typed_args) -> Outcome`; each calls the service steps the tests
exercise directly. Wanted default schedules (UTC or the school's zone):

* `sync_sources(run, kind=None)` — every 15 minutes, `*/15 * * * *`: database sources read
  what is new, http sources fetch today (succeeded days are skipped), folders take new files.
* `settle_source_jobs(run)` — every 5 minutes, `*/5 * * * *`: a safety net that completes jobs
  whose uploads finished while nobody waited (the worker's upload hook is the fast path).
* `check_missing_sources(run, days=14)` — weekdays at 08:00, `0 8 * * 1-5`: alerts per source.
* `run_missing_sources(run, days=7)` — nightly at 02:30, `30 2 * * *`: `missing --run`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from batchops_core.enums import RunStatus
from batchops_core.permissions import SYSTEM
from batchops_core.sources.cadence import today


def _outcome(status: RunStatus, message: str, data: dict[str, Any], rows: int | None = None) -> Any:
    try:
        from batchops_core.worker.automation.frame import Outcome
    except ImportError:  # before the worker package
        from batchops_core.automation import Outcome  # type: ignore[no-redef]
    return Outcome(status, message, data, rows)


async def sync_sources(run: Any, kind: str | None = None) -> Any:
    from sqlalchemy import select

    from batchops_core.sources.models import Source
    from batchops_core.sources.sync import sync_source

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
        return _outcome(RunStatus.SKIPPED, "no enabled sources", {"sources": 0})
    return _outcome(
        RunStatus.SUCCEEDED,
        f"{len(names)} source(s) synced, {len(failed)} failing",
        {"sources": len(names), "failing": failed},
        rows,
    )


async def settle_source_jobs(run: Any) -> Any:
    from batchops_core.sources.health import settle_processing

    counts = await settle_processing(run.ctx.db, run.ctx.settings)
    if not counts:
        return _outcome(RunStatus.SKIPPED, "no source job waiting for its uploads", {})
    return _outcome(RunStatus.SUCCEEDED, f"settled: {counts}", counts)


async def check_missing_sources(run: Any, days: int = 14) -> Any:
    from batchops_core.sources.health import alert_missing

    counts = await alert_missing(run.ctx.db, run.ctx.settings, days)
    status = RunStatus.SUCCEEDED if counts else RunStatus.SKIPPED
    return _outcome(
        status, f"{sum(counts.values())} missing day(s) in {len(counts)} source(s)", counts
    )


async def run_missing_sources(run: Any, days: int = 7) -> Any:
    from batchops_core.sources.missing import run_missing

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
        return _outcome(RunStatus.SKIPPED, "no missing days", {})
    return _outcome(
        RunStatus.SUCCEEDED,
        f"{len(missing)} missing day(s) queued in {len(reports)} source(s)",
        {"sources": [r.source for r in reports]},
    )
