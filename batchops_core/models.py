"""The whole schema in one place: SQLAlchemy 2 typed models for SQLite and PostgreSQL.

Indexes follow the listing queries of the screens: by status and creation time, and every foreign
key. Statuses are the string enums of `batchops_core.enums`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from batchops_core.enums import (
    IncidentStatus,
    ProcessMode,
    Remediation,
    Role,
    RunKind,
    RunStatus,
    Severity,
    Stage,
    StepStatus,
    TicketStatus,
    UploadStatus,
)
from batchops_core.infra.clock import utcnow
from batchops_core.infra.db_types import UTCDateTime, str_enum


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class User(Timestamped, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    role: Mapped[Role] = mapped_column(str_enum(Role), default=Role.USER)
    password_hash: Mapped[str] = mapped_column(String(255))
    email_verified: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    must_reset_password: Mapped[bool] = mapped_column(default=False)
    session_epoch: Mapped[int] = mapped_column(default=0)
    """Bumped to end every open session of the account (password reset, disable)."""
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL"), index=True
    )
    last_login_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class _CodeRequest(Timestamped):
    """A hashed, expiring, single-use code sent by email."""

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    invalidated_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    sent: Mapped[bool] = mapped_column(default=False)
    """False until SMTP accepted the message; an unsent code is never usable."""


class EmailVerificationRequest(_CodeRequest, Base):
    __tablename__ = "email_verification_requests"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


class PasswordResetRequest(_CodeRequest, Base):
    __tablename__ = "password_reset_requests"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


class Department(Timestamped, Base):
    """A department feed (the design's DepartmentSource)."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    contact_email: Mapped[str] = mapped_column(String(254), default="")
    required_columns: Mapped[list[Any] | None] = mapped_column(JSON)
    key_column: Mapped[str | None] = mapped_column(String(64), default="student_id")
    """The column that identifies a row (checked for blanks, format, repeats); None: no key."""
    gradebook: Mapped[bool] = mapped_column(default=False)
    """Held to the gradebook rule: the key plus at least one numeric score column."""
    aliases: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Header names in this department's exports → BatchOps names (`roll_no` → `student_id`)."""
    active: Mapped[bool] = mapped_column(default=True)
    last_ingested_at: Mapped[datetime | None]
    last_ingested_record_id: Mapped[int] = mapped_column(BigInteger, default=0)
    last_submitted_at: Mapped[datetime | None]


class DepartmentRecord(Timestamped, Base):
    __tablename__ = "department_records"
    __table_args__ = (Index("ix_department_records_dept_id", "department_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"))
    student_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Upload(Timestamped, Base):
    __tablename__ = "uploads"
    __table_args__ = (
        Index("ix_uploads_status_created", "status", "created_at"),
        Index("ix_uploads_sha_source", "sha256", "source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    stored_path: Mapped[str] = mapped_column(String(1024), default="")
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    source: Mapped[str] = mapped_column(String(100), default="manual")
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL"), index=True
    )
    uploader_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[UploadStatus] = mapped_column(
        str_enum(UploadStatus), default=UploadStatus.QUEUED
    )
    current_stage: Mapped[Stage | None] = mapped_column(str_enum(Stage))
    process_mode: Mapped[ProcessMode] = mapped_column(
        str_enum(ProcessMode), default=ProcessMode.TRANSFORM
    )
    process_config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempt: Mapped[int] = mapped_column(default=0)
    rows_in: Mapped[int | None]
    rows_out: Mapped[int | None]
    rows_quarantined: Mapped[int | None]
    report_csv: Mapped[str | None] = mapped_column(String(1024))
    report_pdf: Mapped[str | None] = mapped_column(String(1024))
    fixlist_csv: Mapped[str | None] = mapped_column(String(1024))
    fixlist_xlsx: Mapped[str | None] = mapped_column(String(1024))
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    duplicate_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("uploads.id", ondelete="SET NULL")
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None]

    uploader: Mapped[User | None] = relationship(foreign_keys=[uploader_id], lazy="raise")

    def storage_keys(self) -> list[str]:
        """The storage keys this row names (its file, reports and fix-lists)."""
        return [value for c in STORAGE_KEY_COLUMNS if (value := getattr(self, c.key))]


STORAGE_KEY_COLUMNS = (
    Upload.stored_path,
    Upload.report_csv,
    Upload.report_pdf,
    Upload.fixlist_csv,
    Upload.fixlist_xlsx,
)
"""Every column that holds a storage key: what the purge deletes, the orphan sweep keeps, and a
backup copies."""


class Job(Timestamped, Base):
    """A schedule: a task with arguments fired by a cron line in a timezone."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_enabled_next", "enabled", "next_run_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    task: Mapped[str] = mapped_column(String(64))
    arguments: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cron: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    enabled: Mapped[bool] = mapped_column(default=True)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    next_run_at: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]
    last_status: Mapped[RunStatus | None] = mapped_column(str_enum(RunStatus))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class JobRun(Timestamped, Base):
    """One execution of the pipeline for an upload, or of an automation task."""

    __tablename__ = "job_runs"
    __table_args__ = (
        Index("ix_job_runs_status_created", "status", "created_at"),
        Index("ix_job_runs_heartbeat", "status", "heartbeat_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[RunKind] = mapped_column(str_enum(RunKind))
    task: Mapped[str] = mapped_column(String(64))
    upload_id: Mapped[int | None] = mapped_column(
        ForeignKey("uploads.id", ondelete="CASCADE"), index=True
    )
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), index=True
    )
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[RunStatus] = mapped_column(str_enum(RunStatus), default=RunStatus.QUEUED)
    attempt: Mapped[int] = mapped_column(default=1)
    worker: Mapped[str | None] = mapped_column(String(128))
    arq_job_id: Mapped[str | None] = mapped_column(String(128), index=True)
    scheduled_for: Mapped[datetime | None]
    lateness_seconds: Mapped[float | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    rows_in: Mapped[int | None]
    rows_out: Mapped[int | None]
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    log: Mapped[list[Any]] = mapped_column(JSON, default=list)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    steps: Mapped[list[JobRunStep]] = relationship(
        back_populates="run", order_by="JobRunStep.position", lazy="raise"
    )


class JobRunStep(Base):
    __tablename__ = "job_run_steps"
    __table_args__ = (UniqueConstraint("run_id", "stage", name="uq_job_run_steps_run_stage"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("job_runs.id", ondelete="CASCADE"), index=True)
    stage: Mapped[Stage] = mapped_column(str_enum(Stage))
    position: Mapped[int]
    status: Mapped[StepStatus] = mapped_column(str_enum(StepStatus), default=StepStatus.PENDING)
    started_at: Mapped[datetime | None]
    duration_ms: Mapped[float | None]
    rows_in: Mapped[int | None]
    rows_out: Mapped[int | None]
    log: Mapped[list[Any]] = mapped_column(JSON, default=list)

    run: Mapped[JobRun] = relationship(back_populates="steps", lazy="raise")


class KnownError(Timestamped, Base):
    __tablename__ = "known_errors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    pattern: Mapped[str] = mapped_column(Text)
    """A regex searched in `"<error code>: <message>"`."""
    stage: Mapped[Stage | None] = mapped_column(str_enum(Stage))
    severity: Mapped[Severity] = mapped_column(str_enum(Severity), default=Severity.MEDIUM)
    category: Mapped[str] = mapped_column(String(64), default="data")
    root_cause: Mapped[str] = mapped_column(Text, default="")
    fix: Mapped[str] = mapped_column(Text, default="")
    remediation: Mapped[Remediation] = mapped_column(
        str_enum(Remediation, 32), default=Remediation.NONE
    )
    remediation_args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(default=True)


class Incident(Timestamped, Base):
    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_status_severity", "status", "severity"),
        Index("ix_incidents_fingerprint_status", "fingerprint", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(100), default="")
    upload_id: Mapped[int | None] = mapped_column(
        ForeignKey("uploads.id", ondelete="SET NULL"), index=True
    )
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("job_runs.id", ondelete="SET NULL"), index=True
    )
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), index=True
    )
    stage: Mapped[Stage | None] = mapped_column(str_enum(Stage))
    error_code: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    hint: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Row/column pointers and the validation report, as the failing stage gave them."""
    severity: Mapped[Severity] = mapped_column(str_enum(Severity), default=Severity.MEDIUM)
    category: Mapped[str] = mapped_column(String(64), default="data")
    status: Mapped[IncidentStatus] = mapped_column(
        str_enum(IncidentStatus), default=IncidentStatus.OPEN
    )
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    known_error_id: Mapped[int | None] = mapped_column(
        ForeignKey("known_errors.id", ondelete="SET NULL"), index=True
    )
    root_cause: Mapped[str] = mapped_column(Text, default="")
    corrective_action: Mapped[str] = mapped_column(Text, default="")
    impact_summary: Mapped[str] = mapped_column(Text, default="")
    analysis_notes: Mapped[str] = mapped_column(Text, default="")
    retry_count: Mapped[int] = mapped_column(default=0)
    auto_retry_count: Mapped[int] = mapped_column(default=0)
    occurrences: Mapped[int] = mapped_column(default=1)
    fingerprint: Mapped[str] = mapped_column(String(64))
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    archived_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class IncidentEvent(Timestamped, Base):
    """One line of an incident's timeline."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")


class Ticket(Timestamped, Base):
    """Action tracking tied to an incident."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(255))
    status: Mapped[TicketStatus] = mapped_column(str_enum(TicketStatus), default=TicketStatus.OPEN)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    notes: Mapped[str] = mapped_column(Text, default="")
    closed_at: Mapped[datetime | None]


class AuditLog(Timestamped, Base):
    """Who did what to what, when, and from where."""

    __tablename__ = "audit_logs"
    __table_args__ = (Index("ix_audit_logs_action_created", "action", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    actor_name: Mapped[str] = mapped_column(String(64), default="system")
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32), default="")
    target_id: Mapped[int | None]
    target_name: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    client_addr: Mapped[str | None] = mapped_column(String(64))


class WorkerHeartbeat(Base):
    """One row per live worker process; the sweeper and the Home screen read it."""

    __tablename__ = "worker_heartbeats"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(128), default="")
    pid: Mapped[int] = mapped_column(default=0)
    embedded: Mapped[bool] = mapped_column(default=False)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    jobs_running: Mapped[int] = mapped_column(default=0)
