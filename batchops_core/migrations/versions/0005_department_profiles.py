"""Department validation profiles (key column, gradebook or not, aliases) and two seed fixes.

Revision ID: 0005
Revises: 0004

Until now every named department was held to the gradebook rule (an identifier plus at least one
numeric score), chosen in code. The department row now says it: existing rows keep the rule
(`gradebook` true) unless they already carried their own list of required columns (which was
enforced exactly, without the rule), and the seeded Library feed — loans and returns, no score
at all, which failed every day — becomes a non-gradebook profile with its own columns and no key
(a student borrows many books, so `student_id` repeats by design).

The seeded known error "Student identifier under another name" matched any MISSING_COLUMN
message that merely mentioned `student_id` (the gradebook message lists the file's columns, so a
missing *score* was tagged as a missing identifier and "fixed" with an alias). It now matches
only a missing `student_id` column; a row an operator has edited since is left alone.

`users.department_id` already exists (0001). On PostgreSQL the departments' id sequence is moved
past the seeded rows (0002 gave them explicit ids), so the first department an admin creates does
not collide with Admissions.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALIAS_ERROR = "Student identifier under another name"
OLD_PATTERN = r"^MISSING_COLUMN: .*student_id"
NEW_PATTERN = r"^MISSING_COLUMN: required column 'student_id' not found"
LIBRARY_COLUMNS = ["student_id", "book_id", "borrowed_on"]

departments = sa.table(
    "departments",
    sa.column("name", sa.String),
    sa.column("required_columns", sa.JSON),
    sa.column("key_column", sa.String),
    sa.column("gradebook", sa.Boolean),
)
known_errors = sa.table("known_errors", sa.column("name", sa.String), sa.column("pattern", sa.Text))


def upgrade() -> None:
    # Plain ADD COLUMN, never batch mode: on SQLite a batch "move and copy" drops the old table,
    # and with foreign keys on that cascades into department_records and clears every user's,
    # upload's and run's department.
    op.add_column(
        "departments",
        sa.Column("key_column", sa.String(length=64), nullable=True, server_default="student_id"),
    )
    op.add_column(
        "departments",
        sa.Column("gradebook", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.add_column(
        "departments",
        sa.Column("aliases", sa.JSON(), nullable=False, server_default=sa.text("'{}'")),
    )
    # A JSON null and SQL NULL differ on PostgreSQL; either means "no list".
    op.execute(
        departments.update()
        .where(
            departments.c.required_columns.is_not(None),
            sa.cast(departments.c.required_columns, sa.Text) != "null",
        )
        .values(gradebook=False)
    )
    op.execute(
        departments.update()
        .where(departments.c.name == "Library")
        .values(gradebook=False, key_column=None, required_columns=LIBRARY_COLUMNS)
    )
    op.execute(
        known_errors.update()
        .where(known_errors.c.name == ALIAS_ERROR, known_errors.c.pattern == OLD_PATTERN)
        .values(pattern=NEW_PATTERN)
    )
    if op.get_bind().dialect.name == "postgresql":
        # 0002 inserted the departments with explicit ids, which leaves PostgreSQL's sequence at
        # 1: the first department created afterwards collided with Admissions.
        op.execute(
            "SELECT setval(pg_get_serial_sequence('departments', 'id'), "
            "COALESCE((SELECT MAX(id) FROM departments), 0) + 1, false)"
        )


def downgrade() -> None:
    op.execute(
        known_errors.update()
        .where(known_errors.c.name == ALIAS_ERROR, known_errors.c.pattern == NEW_PATTERN)
        .values(pattern=OLD_PATTERN)
    )
    op.execute(
        departments.update()
        .where(departments.c.name == "Library")
        .values(required_columns=sa.null())
    )
    for column in ("aliases", "gradebook", "key_column"):  # native DROP COLUMN (SQLite 3.35+)
        op.execute(f"ALTER TABLE departments DROP COLUMN {column}")
