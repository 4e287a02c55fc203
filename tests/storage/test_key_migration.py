"""Migration 0007 turns the absolute paths of earlier uploads into storage keys."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from batchops_core.infra.db import Database
from batchops_core.infra.migrate import alembic_config, upgrade

OLD = {
    "stored_path": "/home/ops/.local/share/batchops/storage/uploads/12/marks.csv",
    "report_csv": "/srv/batchops/storage/exports/12/marks_report.csv",
    "report_pdf": "exports/12/marks_report.pdf",
    "fixlist_csv": "/elsewhere/fixlist.csv",
    "fixlist_xlsx": None,
}


async def test_absolute_paths_become_keys_and_the_rest_is_left_alone(db: Database) -> None:
    def down(conn: object) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")

    async with db.engine.begin() as conn:
        await conn.run_sync(down)
        await conn.execute(
            text(
                "INSERT INTO uploads (id, filename, sha256, size_bytes, source, status, "
                "process_mode, process_config, attempt, stored_path, report_csv, report_pdf, "
                "fixlist_csv, fixlist_xlsx, created_at, updated_at) VALUES (12, 'marks.csv', "
                "'0', 1, 'manual', 'PUBLISHED', 'TRANSFORM', '{}', 1, :stored_path, :report_csv, "
                ":report_pdf, :fixlist_csv, :fixlist_xlsx, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            OLD,
        )
    await upgrade(db)
    async with db.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT stored_path, report_csv, report_pdf, fixlist_csv, fixlist_xlsx "
                    "FROM uploads WHERE id = 12"
                )
            )
        ).one()
    assert tuple(row) == (
        "uploads/12/marks.csv",
        "exports/12/marks_report.csv",
        "exports/12/marks_report.pdf",
        "/elsewhere/fixlist.csv",
        None,
    )
