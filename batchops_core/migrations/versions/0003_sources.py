"""Sources: external systems, per-(source, partition, day) jobs, records, the school calendar.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Filled in by the sources package's first landing."""


def downgrade() -> None:
    """Nothing to undo yet."""
