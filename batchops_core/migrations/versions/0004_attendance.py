"""Attendance: employees, shifts, holidays, punches, daily register, corrections.

Revision ID: 0004
Revises: 0003

Punch and day times are naive local wall-clock DateTime columns on purpose (see
batchops_core/attendance/models.py); bookkeeping timestamps are UTC like everywhere else.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attendance_correction_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("awo", name="correctionkind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("date_from", sa.Date(), nullable=False),
        sa.Column("date_to", sa.Date(), nullable=False),
        sa.Column("actor_name", sa.String(length=64), nullable=False),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.Column("reverted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reverted_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("attendance_correction_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_attendance_correction_runs_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "attendance_holidays",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "type",
            sa.Enum(
                "public", "festival", "school", name="holidaytype", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("day"),
    )
    with op.batch_alter_table("attendance_holidays", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_attendance_holidays_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "attendance_shifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("start_minute", sa.Integer(), nullable=False),
        sa.Column("end_minute", sa.Integer(), nullable=False),
        sa.Column("grace_in", sa.Integer(), nullable=False),
        sa.Column("grace_out", sa.Integer(), nullable=False),
        sa.Column("half_day_minutes", sa.Integer(), nullable=False),
        sa.Column("full_day_minutes", sa.Integer(), nullable=False),
        sa.Column("overtime_after", sa.Integer(), nullable=False),
        sa.Column("overtime_before", sa.Integer(), nullable=False),
        sa.Column("lunch_minutes", sa.Integer(), nullable=False),
        sa.Column("week_off", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    with op.batch_alter_table("attendance_shifts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_attendance_shifts_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "attendance_employees",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("shift_id", sa.Integer(), nullable=False),
        sa.Column("department", sa.String(length=100), nullable=False),
        sa.Column("joined", sa.Date(), nullable=True),
        sa.Column("left", sa.Date(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["shift_id"], ["attendance_shifts.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    with op.batch_alter_table("attendance_employees", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_attendance_employees_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            "ix_attendance_employees_department", ["department", "code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_attendance_employees_shift_id"), ["shift_id"], unique=False
        )

    op.create_table(
        "attendance_corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("employee_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column(
            "before",
            sa.Enum(
                "P", "A", "HD", "WO", "PH", "MP", name="daystatus", native_enum=False, length=4
            ),
            nullable=False,
        ),
        sa.Column(
            "after",
            sa.Enum(
                "P", "A", "HD", "WO", "PH", "MP", name="daystatus", native_enum=False, length=4
            ),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["employee_id"], ["attendance_employees.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["attendance_correction_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("attendance_corrections", schema=None) as batch_op:
        batch_op.create_index(
            "ix_attendance_corrections_day", ["employee_id", "day", "active"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_attendance_corrections_run_id"), ["run_id"], unique=False
        )

    op.create_table(
        "attendance_days",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("employee_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "P", "A", "HD", "WO", "PH", "MP", name="daystatus", native_enum=False, length=4
            ),
            nullable=False,
        ),
        sa.Column(
            "computed_status",
            sa.Enum(
                "P", "A", "HD", "WO", "PH", "MP", name="daystatus", native_enum=False, length=4
            ),
            nullable=False,
        ),
        sa.Column("rule", sa.Integer(), nullable=False),
        sa.Column("in_time", sa.DateTime(), nullable=True),
        sa.Column("out_time", sa.DateTime(), nullable=True),
        sa.Column("work_minutes", sa.Integer(), nullable=False),
        sa.Column("late_minutes", sa.Integer(), nullable=False),
        sa.Column("early_exit_minutes", sa.Integer(), nullable=False),
        sa.Column("overtime_minutes", sa.Integer(), nullable=False),
        sa.Column("punch_count", sa.Integer(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("pairs", sa.JSON(), nullable=False),
        sa.Column("pair_minutes", sa.Integer(), nullable=False),
        sa.Column("digest", sa.BigInteger(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["employee_id"], ["attendance_employees.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("employee_id", "day", name="uq_attendance_day"),
    )
    with op.batch_alter_table("attendance_days", schema=None) as batch_op:
        batch_op.create_index("ix_attendance_days_day_status", ["day", "status"], unique=False)

    op.create_table(
        "attendance_punches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("employee_id", sa.Integer(), nullable=False),
        sa.Column("punched_at", sa.DateTime(), nullable=False),
        sa.Column(
            "direction",
            sa.Enum("IN", "OUT", "BOTH", name="direction", native_enum=False, length=8),
            nullable=False,
        ),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column(
            "approval",
            sa.Enum(
                "approved", "pending", "rejected", name="approval", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["employee_id"], ["attendance_employees.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("employee_id", "punched_at", "device", name="uq_attendance_punch"),
    )
    with op.batch_alter_table("attendance_punches", schema=None) as batch_op:
        batch_op.create_index("ix_attendance_punches_approval", ["approval", "id"], unique=False)
        batch_op.create_index("ix_attendance_punches_at", ["punched_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_attendance_punches_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            "ix_attendance_punches_employee_at", ["employee_id", "punched_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("attendance_punches", schema=None) as batch_op:
        batch_op.drop_index("ix_attendance_punches_employee_at")
        batch_op.drop_index(batch_op.f("ix_attendance_punches_created_at"))
        batch_op.drop_index("ix_attendance_punches_at")
        batch_op.drop_index("ix_attendance_punches_approval")

    op.drop_table("attendance_punches")
    with op.batch_alter_table("attendance_days", schema=None) as batch_op:
        batch_op.drop_index("ix_attendance_days_day_status")

    op.drop_table("attendance_days")
    with op.batch_alter_table("attendance_corrections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attendance_corrections_run_id"))
        batch_op.drop_index("ix_attendance_corrections_day")

    op.drop_table("attendance_corrections")
    with op.batch_alter_table("attendance_employees", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attendance_employees_shift_id"))
        batch_op.drop_index("ix_attendance_employees_department")
        batch_op.drop_index(batch_op.f("ix_attendance_employees_created_at"))

    op.drop_table("attendance_employees")
    with op.batch_alter_table("attendance_shifts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attendance_shifts_created_at"))

    op.drop_table("attendance_shifts")
    with op.batch_alter_table("attendance_holidays", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attendance_holidays_created_at"))

    op.drop_table("attendance_holidays")
    with op.batch_alter_table("attendance_correction_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attendance_correction_runs_created_at"))

    op.drop_table("attendance_correction_runs")
