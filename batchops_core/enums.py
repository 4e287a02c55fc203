"""Every status and kind BatchOps stores: string enums kept by value, portable across databases."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MODERATOR = "moderator"
    USER = "user"


class UploadStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    PUBLISHED = "published"
    PARTIAL = "partial"
    """Published with quarantined rows and a fix-list."""
    FAILED = "failed"
    DUPLICATE = "duplicate"
    CANCELLED = "cancelled"
    """Stopped by a person before it was published (`batchops upload cancel`)."""

    @property
    def is_final(self) -> bool:
        """No worker will touch the upload again unless a person (or a remediation) retries it."""
        return self in _FINAL_UPLOAD

    @property
    def is_success(self) -> bool:
        """A report exists (possibly with a fix-list of quarantined rows)."""
        return self in (UploadStatus.PUBLISHED, UploadStatus.PARTIAL)

    @classmethod
    def finals(cls) -> tuple[UploadStatus, ...]:
        return tuple(s for s in cls if s.is_final)


_FINAL_UPLOAD = frozenset(
    {
        UploadStatus.PUBLISHED,
        UploadStatus.PARTIAL,
        UploadStatus.FAILED,
        UploadStatus.DUPLICATE,
        UploadStatus.CANCELLED,
    }
)


class ProcessMode(StrEnum):
    TRANSFORM = "transform"
    APPEND = "append"
    DELETE = "delete"
    CUSTOM = "custom"


class Stage(StrEnum):
    STANDARDIZE = "standardize"
    VALIDATE = "validate"
    TRANSFORM = "transform"
    SUMMARIZE = "summarize"
    PUBLISH = "publish"


STAGES: tuple[Stage, ...] = tuple(Stage)


class RunKind(StrEnum):
    PIPELINE = "pipeline"
    AUTOMATION = "automation"


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class IncidentStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    ARCHIVED = "archived"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class TicketStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Remediation(StrEnum):
    NONE = "none"
    REREAD_DELIMITER = "reread_delimiter"
    REREAD_ENCODING = "reread_encoding"
    APPLY_ALIAS = "apply_alias"
    RETRY_LATER = "retry_later"


class CodePurpose(StrEnum):
    VERIFY = "verify"
    RESET = "reset"
