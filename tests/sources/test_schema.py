"""The hand-written migration 0003 builds exactly what the sources models declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from batchops_core.infra.db import Database
from batchops_core.models import Base
from batchops_core.sources import models

TABLES = {
    models.Source.__tablename__,
    models.SourceJob.__tablename__,
    models.SourceUpload.__tablename__,
    models.SourceFile.__tablename__,
    models.SourceRecord.__tablename__,
    models.CalendarEntry.__tablename__,
}


def _ours(diff: object) -> bool:
    text = repr(diff)
    return any(f"'{t}'" in text or f"<{t}>" in text or f"Table('{t}'" in text for t in TABLES)


async def test_migration_matches_the_models(db: Database) -> None:
    def compare(sync_conn: object) -> list[object]:
        context = MigrationContext.configure(
            sync_conn, opts={"compare_type": False, "render_as_batch": True}
        )
        return [d for d in compare_metadata(context, Base.metadata) if _ours(d)]

    async with db.engine.connect() as conn:
        diffs = await conn.run_sync(compare)
    assert diffs == []
