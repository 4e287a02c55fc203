"""Source health across all sources: missing-day alerts, settling processing jobs, metrics.

These are the service-level steps the scheduled bodies in `jobs.py` call; they are also what
the tests call directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import func, select

from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.permissions import SYSTEM
from batchops_core.sources import alerts
from batchops_core.sources.missing import find_missing
from batchops_core.sources.models import JobStatus, Source, SourceJob


async def alert_missing(db: Database, settings: Settings, days: int = 14) -> dict[str, int]:
    """Count each enabled source's missing days in the last `days`; alert past its threshold.

    Returns missing days per source. A source with none has its missing-data incident resolved.
    """
    async with db.unit() as uow:
        missing = await find_missing(uow, actor=SYSTEM, settings=settings, days=days)
        counts: dict[str, int] = {}
        for m in missing:
            counts[m.source] = counts.get(m.source, 0) + 1
        for source in await uow.scalars(select(Source).where(Source.enabled.is_(True))):
            days_missing = len({m.day for m in missing if m.source_id == source.id})
            if days_missing:
                await alerts.note_missing(uow, source, days_missing, settings)
            elif source.consecutive_failures == 0:
                await alerts.resolve_alert(uow, source, "no expected day is missing any more")
    return counts


async def settle_processing(db: Database, settings: Settings) -> dict[str, int]:
    """Complete every processing job whose uploads have finished (the worker's safety net)."""
    from batchops_core.sources.completion import complete_job

    async with db.unit() as uow:
        ids = list(
            await uow.scalars(select(SourceJob.id).where(SourceJob.status == JobStatus.PROCESSING))
        )
    result: dict[str, int] = {}
    for job_id in ids:
        status = await complete_job(db, settings, job_id)
        result[status.value] = result.get(status.value, 0) + 1
    return result


@dataclass(frozen=True)
class SourceFigures:
    name: str
    jobs: dict[str, int]
    rows: int
    missing_days: int
    last_success_at: datetime | None


async def figures(db: Database, settings: Settings, days: int = 14) -> list[SourceFigures]:
    """Per source: jobs by result, rows stored, missing days in the window, last success."""
    async with db.unit() as uow:
        sources = list(await uow.scalars(select(Source).order_by(Source.name)))
        jobs = (
            await uow.execute(
                select(
                    SourceJob.source_id, SourceJob.status, func.count(), func.sum(SourceJob.rows)
                ).group_by(SourceJob.source_id, SourceJob.status)
            )
        ).all()
        missing = await find_missing(uow, actor=SYSTEM, settings=settings, days=days)
    by_source: dict[int, dict[str, int]] = {}
    rows: dict[int, int] = {}
    for source_id, status, count, total in jobs:
        by_source.setdefault(source_id, {})[str(status)] = int(count)
        rows[source_id] = rows.get(source_id, 0) + int(total or 0)
    gaps: dict[int, int] = {}
    for m in missing:
        gaps[m.source_id] = gaps.get(m.source_id, 0) + 1
    return [
        SourceFigures(
            s.name, by_source.get(s.id, {}), rows.get(s.id, 0), gaps.get(s.id, 0), s.last_success_at
        )
        for s in sources
    ]


class SourceMetrics:
    """Prometheus gauges per source, on the daemon's registry (`Metrics.registry`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.jobs = Gauge(
            "batchops_source_jobs",
            "Source jobs by result.",
            ["source", "result"],
            registry=registry,
        )
        self.rows = Gauge(
            "batchops_source_rows", "Rows stored by a source's jobs.", ["source"], registry=registry
        )
        self.missing = Gauge(
            "batchops_source_missing_days",
            "Expected days without data (14 days).",
            ["source"],
            registry=registry,
        )
        self.last_success = Gauge(
            "batchops_source_last_success_timestamp_seconds",
            "Unix time of the last success.",
            ["source"],
            registry=registry,
        )

    async def refresh(self, db: Database, settings: Settings) -> list[SourceFigures]:
        rows = await figures(db, settings)
        for f in rows:
            for status in JobStatus:
                self.jobs.labels(source=f.name, result=status.value).set(
                    f.jobs.get(status.value, 0)
                )
            self.rows.labels(source=f.name).set(f.rows)
            self.missing.labels(source=f.name).set(f.missing_days)
            self.last_success.labels(source=f.name).set(
                f.last_success_at.timestamp() if f.last_success_at else 0
            )
        return rows


def as_json(f: SourceFigures) -> dict[str, Any]:
    return {
        "source": f.name,
        "jobs": f.jobs,
        "rows": f.rows,
        "missing_days": f.missing_days,
        "last_success_at": f.last_success_at.isoformat() if f.last_success_at else None,
    }
