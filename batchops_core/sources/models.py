"""The sources schema: external systems, their per-(source, partition, day) jobs, records, and
the school calendar that says which days data is expected.

* `SourceJob` is unique per (source, partition, day): a second sync of a succeeded day finds the
  row and does nothing unless forced, so at-least-once delivery never fetches a day twice.
* `SourceRecord` is what arrived: unique per (source, external id) for database sources (the
  guard behind "no row doubled"), indexed on (source, day, key, id) for keyset paging by day.
* `SourceUpload` ties a fetched file's upload to its job, so the records stored from the
  upload's published CSV land on the right (source, partition, day).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from batchops_core.infra.clock import utcnow
from batchops_core.infra.db_types import str_enum
from batchops_core.models import Base, Timestamped


class SourceKind(StrEnum):
    DATABASE = "database"
    HTTP = "http"
    FOLDER = "folder"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PROCESSING = "processing"
    """Files handed to the pipeline; the job succeeds once their records are stored."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class CalendarKind(StrEnum):
    TERM = "term"
    HOLIDAY = "holiday"


class Source(Timestamped, Base):
    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[SourceKind] = mapped_column(str_enum(SourceKind))
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL"), index=True
    )
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secret: Mapped[str | None] = mapped_column(Text)
    """The database password encrypted with BATCHOPS_SOURCES_KEY (Fernet), never plain text."""
    enabled: Mapped[bool] = mapped_column(default=True)
    last_synced_id: Mapped[int] = mapped_column(BigInteger, default=0)
    last_sync_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SourceJob(Timestamped, Base):
    __tablename__ = "source_jobs"
    __table_args__ = (
        UniqueConstraint("source_id", "partition", "day", name="uq_source_jobs_source_part_day"),
        Index("ix_source_jobs_source_day", "source_id", "day"),
        Index("ix_source_jobs_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    partition: Mapped[str] = mapped_column(String(100), default="")
    day: Mapped[date] = mapped_column(Date)
    status: Mapped[JobStatus] = mapped_column(str_enum(JobStatus), default=JobStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    files: Mapped[list[Any]] = mapped_column(JSON, default=list)
    chosen: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """The files picked, each with the reason (`most rows of type csv: 120 > 80`)."""
    checksums: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    processor_version: Mapped[str] = mapped_column(String(32), default="")
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SourceUpload(Base):
    __tablename__ = "source_uploads"

    upload_id: Mapped[int] = mapped_column(
        ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True
    )
    job_id: Mapped[int] = mapped_column(
        ForeignKey("source_jobs.id", ondelete="CASCADE"), index=True
    )
    file_type: Mapped[str] = mapped_column(String(32), default="")
    records_stored: Mapped[bool] = mapped_column(default=False)


class SourceFile(Timestamped, Base):
    """A file a folder source has taken (by checksum), so it is never taken twice."""

    __tablename__ = "source_files"
    __table_args__ = (UniqueConstraint("source_id", "sha256", name="uq_source_files_sha"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    upload_id: Mapped[int | None] = mapped_column(ForeignKey("uploads.id", ondelete="SET NULL"))


class SourceRecord(Base):
    __tablename__ = "source_records"
    __table_args__ = (
        UniqueConstraint("source_id", "external_id", name="uq_source_records_external"),
        Index("ix_source_records_source_day_key", "source_id", "day", "key", "id"),
        Index("ix_source_records_upload", "upload_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    partition: Mapped[str] = mapped_column(String(100), default="")
    key: Mapped[str] = mapped_column(String(255), default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    external_id: Mapped[int | None] = mapped_column(BigInteger)
    upload_id: Mapped[int | None] = mapped_column(Integer)


class CalendarEntry(Timestamped, Base):
    """A term (school days happen inside) or a holiday (none happen inside), inclusive dates."""

    __tablename__ = "school_calendar"
    __table_args__ = (Index("ix_school_calendar_range", "starts_on", "ends_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[CalendarKind] = mapped_column(str_enum(CalendarKind))
    name: Mapped[str] = mapped_column(String(100))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
