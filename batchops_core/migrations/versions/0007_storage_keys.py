"""Uploads name their files by storage key, not by a host's absolute path.

Revision ID: 0007
Revises: 0006

Before this revision `uploads.stored_path`, `report_csv`, `report_pdf`, `fixlist_csv` and
`fixlist_xlsx` held absolute paths under `<data_dir>/storage/`, which only the host that wrote
them could read. A key is the part after that `storage/` folder (`uploads/12/marks.csv`,
`exports/12/marks_report.csv`): the local backend keeps the files exactly where they are, and an
object store is filled by copying the folder as is (`aws s3 sync <data_dir>/storage s3://…`).
A value that is already relative is left alone; an absolute path outside any `storage/` folder is
left too (the pipeline then reports it as missing from storage, an operator's fix).
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("stored_path", "report_csv", "report_pdf", "fixlist_csv", "fixlist_xlsx")
_UNDER_STORAGE = re.compile(r"^.*/storage/((?:uploads|exports)/.+)$")


def as_key(value: str | None) -> str | None:
    """The storage key of an old absolute path, or the value unchanged."""
    if not value or not value.startswith("/"):
        return value
    found = _UNDER_STORAGE.match(value)
    return found.group(1) if found else value


def upgrade() -> None:
    uploads = sa.table("uploads", sa.column("id", sa.Integer), *(sa.column(c) for c in COLUMNS))
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(uploads).where(sa.or_(*(uploads.c[c].like("/%") for c in COLUMNS)))
    ).all()
    for row in rows:
        values = {c: as_key(getattr(row, c)) for c in COLUMNS}
        changed = {c: v for c, v in values.items() if v != getattr(row, c)}
        if changed:
            bind.execute(sa.update(uploads).where(uploads.c.id == row.id).values(**changed))


def downgrade() -> None:
    """Keys stay keys: the data directory of the old paths is not known here."""
