"""Sources service: the one door for the CLI, the TUI and the daemon to sources and their jobs.

Reading needs `VIEW_SOURCES` (every role); adding, editing, enabling, disabling and removing a
source need `EDIT_SOURCES` (admins) and write an audit row; syncing needs `RUN_SOURCES` (staff).
Functions take the unit of work and emit `source.updated` events that leave after COMMIT.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, select

from batchops_core import audit
from batchops_core.errors import NotFound, ValidationFailed
from batchops_core.infra import events
from batchops_core.infra.db import UnitOfWork
from batchops_core.models import Department
from batchops_core.permissions import Action, Actor, require
from batchops_core.sources import secrets
from batchops_core.sources.config import check_config
from batchops_core.sources.models import JobStatus, Source, SourceJob, SourceKind


@dataclass(frozen=True)
class SourceInfo:
    id: int
    name: str
    kind: SourceKind
    department: str | None
    config: dict[str, Any]
    enabled: bool
    has_secret: bool
    last_synced_id: int
    last_sync_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    incident_id: int | None
    created_at: datetime

    @classmethod
    def of(cls, row: Source, department: str | None) -> SourceInfo:
        return cls(
            id=row.id,
            name=row.name,
            kind=SourceKind(row.kind),
            department=department,
            config=dict(row.config or {}),
            enabled=row.enabled,
            has_secret=bool(row.secret),
            last_synced_id=row.last_synced_id,
            last_sync_at=row.last_sync_at,
            last_success_at=row.last_success_at,
            last_error=row.last_error,
            consecutive_failures=row.consecutive_failures,
            incident_id=row.incident_id,
            created_at=row.created_at,
        )

    @property
    def health(self) -> str:
        if not self.enabled:
            return "disabled"
        if self.consecutive_failures:
            return "failing"
        return "ok" if self.last_success_at else "never synced"

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind.value,
            "department": self.department,
            "config": self.config,
            "enabled": self.enabled,
            "password_stored": self.has_secret,
            "last_synced_id": self.last_synced_id,
            "last_sync_at": self.last_sync_at.isoformat() if self.last_sync_at else None,
            "last_success_at": self.last_success_at.isoformat() if self.last_success_at else None,
            "last_error": self.last_error,
            "consecutive_failures": self.consecutive_failures,
            "health": self.health,
            "incident_id": self.incident_id,
        }


@dataclass(frozen=True)
class JobInfo:
    id: int
    source: str
    partition: str
    day: date
    status: JobStatus
    attempts: int
    rows: int
    files: list[Any]
    chosen: list[Any]
    checksums: dict[str, Any]
    processor_version: str
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, row: SourceJob, source: str) -> JobInfo:
        return cls(
            id=row.id,
            source=source,
            partition=row.partition,
            day=row.day,
            status=JobStatus(row.status),
            attempts=row.attempts,
            rows=row.rows,
            files=list(row.files or []),
            chosen=list(row.chosen or []),
            checksums=dict(row.checksums or {}),
            processor_version=row.processor_version,
            error=row.error,
            started_at=row.started_at,
            finished_at=row.finished_at,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "partition": self.partition,
            "date": self.day.isoformat(),
            "status": self.status.value,
            "attempts": self.attempts,
            "rows": self.rows,
            "files": self.files,
            "chosen": self.chosen,
            "checksums": self.checksums,
            "processor_version": self.processor_version,
            "error": self.error,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


def source_event(source_id: int, status: str) -> events.Event:
    return events.Event(type="source.updated", id=source_id, status=status)


async def load_source(uow: UnitOfWork, name: str) -> Source:
    """A source by exact name (case-insensitive) or id."""
    text = name.strip()
    row = await uow.get(Source, int(text)) if text.isdigit() else None
    if row is None:
        row = await uow.scalar(select(Source).where(func.lower(Source.name) == text.lower()))
    if row is None:
        raise NotFound(f"there is no source named {name!r}.")
    return row


async def _department_name(uow: UnitOfWork, department_id: int | None) -> str | None:
    if department_id is None:
        return None
    return await uow.scalar(select(Department.name).where(Department.id == department_id))


async def _info(uow: UnitOfWork, row: Source) -> SourceInfo:
    await uow.flush()
    return SourceInfo.of(row, await _department_name(uow, row.department_id))


async def _department_id(uow: UnitOfWork, name: str) -> int:
    found = await uow.scalar(
        select(Department.id).where(func.lower(Department.name) == name.strip().lower())
    )
    if found is None:
        names = ", ".join(await uow.scalars(select(Department.name).order_by(Department.name)))
        raise ValidationFailed(f"unknown department {name!r}; use one of: {names}.")
    return int(found)


def _clean_name(name: str) -> str:
    clean = " ".join((name or "").split())
    if not clean or len(clean) > 100 or clean.isdigit():
        raise ValidationFailed("a source name must be 1 to 100 characters and not only digits.")
    return clean


async def add_source(
    uow: UnitOfWork,
    *,
    actor: Actor,
    name: str,
    kind: SourceKind | str,
    department: str,
    config: dict[str, Any],
    password: str | None = None,
) -> SourceInfo:
    require(actor, Action.EDIT_SOURCES)
    clean = _clean_name(name)
    try:
        source_kind = SourceKind(str(kind).strip().lower())
    except ValueError:
        raise ValidationFailed(f"--kind must be database, http or folder, not {kind!r}.") from None
    if await uow.scalar(select(Source.id).where(func.lower(Source.name) == clean.lower())):
        raise ValidationFailed(f"a source named {clean!r} already exists.")
    row = Source(
        name=clean,
        kind=source_kind,
        department_id=await _department_id(uow, department),
        config=check_config(source_kind, config),
        secret=secrets.encrypt(password) if password else None,
    )
    uow.add(row)
    await uow.flush()
    audit.record(
        uow,
        actor=actor,
        action="source.create",
        target_type="source",
        target_id=row.id,
        target_name=row.name,
        detail=f"{source_kind.value} for {department}",
    )
    uow.emit(source_event(row.id, "created"))
    return await _info(uow, row)


async def list_sources(uow: UnitOfWork, *, actor: Actor) -> list[SourceInfo]:
    require(actor, Action.VIEW_SOURCES)
    rows = await uow.execute(
        select(Source, Department.name)
        .outerjoin(Department, Department.id == Source.department_id)
        .order_by(Source.name)
    )
    return [SourceInfo.of(s, d) for s, d in rows]


async def get_source(uow: UnitOfWork, *, actor: Actor, name: str) -> SourceInfo:
    require(actor, Action.VIEW_SOURCES)
    return await _info(uow, await load_source(uow, name))


async def edit_source(
    uow: UnitOfWork,
    *,
    actor: Actor,
    name: str,
    config: dict[str, Any] | None = None,
    department: str | None = None,
    password: str | None = None,
) -> SourceInfo:
    """Replace the config (checked whole), move to another department, or store a password."""
    require(actor, Action.EDIT_SOURCES)
    row = await load_source(uow, name)
    changed = []
    if config is not None:
        row.config = check_config(SourceKind(row.kind), config)
        changed.append("config")
    if department is not None:
        row.department_id = await _department_id(uow, department)
        changed.append(f"department {department}")
    if password is not None:
        row.secret = secrets.encrypt(password) if password else None
        changed.append("password")
    if not changed:
        raise ValidationFailed("nothing to change: give --config, --department or a password.")
    audit.record(
        uow,
        actor=actor,
        action="source.update",
        target_type="source",
        target_id=row.id,
        target_name=row.name,
        detail=", ".join(changed),
    )
    uow.emit(source_event(row.id, "updated"))
    return await _info(uow, row)


async def set_source_enabled(
    uow: UnitOfWork, *, actor: Actor, name: str, enabled: bool
) -> SourceInfo:
    require(actor, Action.EDIT_SOURCES)
    row = await load_source(uow, name)
    if row.enabled != enabled:
        row.enabled = enabled
        audit.record(
            uow,
            actor=actor,
            action="source.enable" if enabled else "source.disable",
            target_type="source",
            target_id=row.id,
            target_name=row.name,
        )
        uow.emit(source_event(row.id, "enabled" if enabled else "disabled"))
    return await _info(uow, row)


async def remove_source(uow: UnitOfWork, *, actor: Actor, name: str) -> SourceInfo:
    """Delete the source with its jobs and records (uploads and incidents stay)."""
    require(actor, Action.EDIT_SOURCES)
    row = await load_source(uow, name)
    info = await _info(uow, row)
    await uow.execute(delete(Source).where(Source.id == row.id))
    audit.record(
        uow,
        actor=actor,
        action="source.remove",
        target_type="source",
        target_id=info.id,
        target_name=info.name,
    )
    uow.emit(source_event(info.id, "removed"))
    return info


async def list_jobs(
    uow: UnitOfWork,
    *,
    actor: Actor,
    name: str,
    limit: int = 50,
    start: date | None = None,
    end: date | None = None,
) -> list[JobInfo]:
    """A source's jobs, newest day first."""
    require(actor, Action.VIEW_SOURCES)
    row = await load_source(uow, name)
    query = select(SourceJob).where(SourceJob.source_id == row.id)
    if start is not None:
        query = query.where(SourceJob.day >= start)
    if end is not None:
        query = query.where(SourceJob.day <= end)
    jobs = await uow.scalars(
        query.order_by(SourceJob.day.desc(), SourceJob.partition).limit(max(1, min(limit, 1000)))
    )
    return [JobInfo.of(j, row.name) for j in jobs]


async def get_jobs(uow: UnitOfWork, *, actor: Actor, job_ids: list[int]) -> list[JobInfo]:
    require(actor, Action.VIEW_SOURCES)
    if not job_ids:
        return []
    rows = await uow.execute(
        select(SourceJob, Source.name)
        .join(Source, Source.id == SourceJob.source_id)
        .where(SourceJob.id.in_(job_ids))
        .order_by(Source.name, SourceJob.day, SourceJob.partition)
    )
    return [JobInfo.of(j, n) for j, n in rows]
