"""Missing data: expected (source, partition, day) with no succeeded job, and running them.

Expected days come from each enabled source's cadence and the school calendar, from the source's
`expected_from` (else the day it was added) to yesterday by default — today's data may still
be on its way. A day counts as arrived only when its job succeeded, so a failed or still
processing day is listed with its state and error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from batchops_core.infra.clock import utcnow
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database, UnitOfWork
from batchops_core.permissions import Action, Actor, require
from batchops_core.sources import calendar, http
from batchops_core.sources.cadence import expected_days
from batchops_core.sources.models import JobStatus, Source, SourceJob, SourceKind
from batchops_core.sources.service import load_source

DEFAULT_DAYS = 14


@dataclass(frozen=True)
class MissingDay:
    source: str
    source_id: int
    kind: SourceKind
    partition: str
    day: date
    state: str
    """`none` (no job), or the job's status: failed, queued, running, processing."""
    error: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "partition": self.partition,
            "date": self.day.isoformat(),
            "state": self.state,
            "error": self.error,
        }


def partitions_of(source: Source) -> list[str]:
    if source.kind == SourceKind.HTTP:
        return [http.partition_label(v) for v in http.partitions(source.config)]
    return [""]


def _window(
    source: Source, start: date | None, end: date | None, today: date, days: int = DEFAULT_DAYS
) -> tuple[date, date]:
    last = end or today - timedelta(days=1)
    if start is not None:
        return start, last
    floor = source.config.get("expected_from")
    first = date.fromisoformat(floor) if floor else source.created_at.date()
    return max(first, last - timedelta(days=days - 1)), last


async def find_missing(
    uow: UnitOfWork,
    *,
    actor: Actor,
    settings: Settings,
    source: str | None = None,
    start: date | None = None,
    end: date | None = None,
    days: int = DEFAULT_DAYS,
) -> list[MissingDay]:
    """Missing days, grouped by source and partition, oldest first. Without `start`, the
    window is the last `days` days, never before the source's `expected_from` or creation."""
    require(actor, Action.VIEW_SOURCES)
    if source:
        sources = [await load_source(uow, source)]
    else:
        sources = list(
            await uow.scalars(select(Source).where(Source.enabled.is_(True)).order_by(Source.name))
        )
    spans = await calendar.spans(uow)
    today = utcnow().astimezone(ZoneInfo(settings.timezone)).date()
    out: list[MissingDay] = []
    for src in sources:
        first, last = _window(src, start, end, today, days)
        days = expected_days(
            src.config.get("cadence", "school days"), first, last, spans, settings.timezone
        )
        if not days:
            continue
        jobs = {
            (p, d): (s, e)
            for p, d, s, e in await uow.execute(
                select(SourceJob.partition, SourceJob.day, SourceJob.status, SourceJob.error).where(
                    SourceJob.source_id == src.id, SourceJob.day >= first, SourceJob.day <= last
                )
            )
        }
        for partition in partitions_of(src):
            for day in days:
                status, error = jobs.get((partition, day), (None, None))
                if status == JobStatus.SUCCEEDED:
                    continue
                out.append(
                    MissingDay(
                        src.name,
                        src.id,
                        SourceKind(src.kind),
                        partition,
                        day,
                        str(status) if status else "none",
                        error,
                    )
                )
    return out


async def run_missing(
    db: Database,
    settings: Settings,
    *,
    actor: Actor,
    source: str | None = None,
    start: date | None = None,
    end: date | None = None,
    wait: bool = True,
    dispatcher: Any = None,
) -> tuple[list[MissingDay], list[Any]]:
    """Queue a job for every missing day: http sources fetch those days, database and folder
    sources run one sync (they deliver by id or by file, not by asked-for day)."""
    from batchops_core.sources.sync import sync_source

    async with db.unit() as uow:
        missing = await find_missing(
            uow, actor=actor, settings=settings, source=source, start=start, end=end
        )
    by_source: dict[str, list[date]] = {}
    for m in missing:
        by_source.setdefault(m.source, [])
        if m.day not in by_source[m.source]:
            by_source[m.source].append(m.day)
    reports = []
    for name, days in by_source.items():
        reports.append(
            await sync_source(
                db,
                settings,
                actor=actor,
                name=name,
                days=sorted(days),
                wait=wait,
                dispatcher=dispatcher,
            )
        )
    return missing, reports


@dataclass(frozen=True)
class GridRow:
    """One line of the missing-data grid: a source's partition and its state per day."""

    source: str
    partition: str
    cells: dict[date, str]
    """`ok`, `missing`, a job status (`failed`, `processing`, …), or `-` when not expected."""


async def missing_grid(
    uow: UnitOfWork, *, actor: Actor, settings: Settings, days: int = 10, end: date | None = None
) -> tuple[list[date], list[GridRow]]:
    """Sources × the last `days` days up to `end` (yesterday by default), for the heat map."""
    require(actor, Action.VIEW_SOURCES)
    last = end or utcnow().astimezone(ZoneInfo(settings.timezone)).date() - timedelta(days=1)
    first = last - timedelta(days=max(1, days) - 1)
    columns = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    spans = await calendar.spans(uow)
    sources = list(
        await uow.scalars(select(Source).where(Source.enabled.is_(True)).order_by(Source.name))
    )
    rows: list[GridRow] = []
    for src in sources:
        wanted = set(
            expected_days(
                src.config.get("cadence", "school days"), first, last, spans, settings.timezone
            )
        )
        states = {
            (p, d): str(s)
            for p, d, s in await uow.execute(
                select(SourceJob.partition, SourceJob.day, SourceJob.status).where(
                    SourceJob.source_id == src.id, SourceJob.day >= first, SourceJob.day <= last
                )
            )
        }
        for partition in partitions_of(src):
            cells = {}
            for day in columns:
                state = states.get((partition, day))
                if state == JobStatus.SUCCEEDED:
                    cells[day] = "ok"
                elif day not in wanted:
                    cells[day] = "-"
                else:
                    cells[day] = state or "missing"
            rows.append(GridRow(src.name, partition, cells))
    return columns, rows
