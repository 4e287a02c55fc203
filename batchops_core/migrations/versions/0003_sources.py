"""Sources: external systems, per-(source, partition, day) jobs, records, the school calendar.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=20)


def _created(table: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.create_index(f"ix_{table}_created_at", ["created_at"], unique=False)


def upgrade() -> None:
    now = sa.DateTime(timezone=True)
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", _enum("sourcekind", "database", "http", "folder"), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("last_synced_id", sa.BigInteger(), nullable=False),
        sa.Column("last_sync_at", now, nullable=True),
        sa.Column("last_success_at", now, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", now, nullable=False),
        sa.Column("created_at", now, nullable=False),
        sa.ForeignKeyConstraint(["department_id"], ["departments.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    _created("sources")
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.create_index("ix_sources_department_id", ["department_id"], unique=False)

    op.create_table(
        "source_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("partition", sa.String(length=100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column(
            "status",
            _enum("jobstatus", "queued", "running", "processing", "succeeded", "failed"),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("chosen", sa.JSON(), nullable=False),
        sa.Column("checksums", sa.JSON(), nullable=False),
        sa.Column("processor_version", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", now, nullable=True),
        sa.Column("finished_at", now, nullable=True),
        sa.Column("updated_at", now, nullable=False),
        sa.Column("created_at", now, nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source_id", "partition", "day", name="uq_source_jobs_source_part_day"),
    )
    _created("source_jobs")
    with op.batch_alter_table("source_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_source_jobs_source_day", ["source_id", "day"], unique=False)
        batch_op.create_index("ix_source_jobs_status", ["status"], unique=False)

    op.create_table(
        "source_uploads",
        sa.Column("upload_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("file_type", sa.String(length=32), nullable=False),
        sa.Column("records_stored", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["upload_id"], ["uploads.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["source_jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("upload_id"),
    )
    with op.batch_alter_table("source_uploads", schema=None) as batch_op:
        batch_op.create_index("ix_source_uploads_job_id", ["job_id"], unique=False)

    op.create_table(
        "source_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("upload_id", sa.Integer(), nullable=True),
        sa.Column("created_at", now, nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["upload_id"], ["uploads.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source_id", "sha256", name="uq_source_files_sha"),
    )
    _created("source_files")

    op.create_table(
        "source_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("partition", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("external_id", sa.BigInteger(), nullable=True),
        sa.Column("upload_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source_id", "external_id", name="uq_source_records_external"),
    )
    with op.batch_alter_table("source_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_source_records_source_day_key", ["source_id", "day", "key", "id"], unique=False
        )
        batch_op.create_index("ix_source_records_upload", ["upload_id"], unique=False)

    op.create_table(
        "school_calendar",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", _enum("calendarkind", "term", "holiday"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("created_at", now, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    _created("school_calendar")
    with op.batch_alter_table("school_calendar", schema=None) as batch_op:
        batch_op.create_index("ix_school_calendar_range", ["starts_on", "ends_on"], unique=False)


def downgrade() -> None:
    for table in (
        "school_calendar",
        "source_records",
        "source_files",
        "source_uploads",
        "source_jobs",
        "sources",
    ):
        op.drop_table(table)
