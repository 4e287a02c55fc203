"""Write a backup: one consistent snapshot of every table, the stored objects it names, then
the manifest.

The tables are read in one transaction (PostgreSQL REPEATABLE READ, read only; SQLite an
explicit read transaction, which in WAL mode sees one snapshot while writers go on), each into
a local gzip file, so the transaction is open only while the database is read, never while
files travel to the backup location. The objects the snapshot's uploads name are copied after
it; one missing (deleted by hand, purged meanwhile, a store emptied) is listed in the manifest
and logged, and the backup still completes. A run delivered twice writes two backups under two
stamps; retention keeps the newest.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from batchops_core.backup.errors import BackupError
from batchops_core.backup.location import BackupRef, backup_name, open_location, prune
from batchops_core.backup.manifest import MANIFEST, TABLES, Manifest, TableEntry
from batchops_core.backup.objects import KEY_COLUMNS, Reference, copy_out
from batchops_core.backup.rows import TableWriter, backed_up_tables, selected
from batchops_core.infra.clock import db_now
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.infra.migrate import head_revision
from batchops_core.storage import StorageError, open_store

PARTITION = 2000


@dataclass(frozen=True)
class BackupResult:
    name: str
    where: str
    manifest: Manifest
    removed: list[str]


@asynccontextmanager
async def consistent_read(db: Database) -> AsyncIterator[AsyncConnection]:
    """A connection whose reads all see the database as of its first read."""
    async with db.engine.connect() as conn:
        if db.is_sqlite:
            await conn.exec_driver_sql("BEGIN")  # pysqlite would run each SELECT on its own
        else:
            conn = await conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        try:
            yield conn
        finally:
            await conn.rollback()


async def _dump_table(
    conn: AsyncConnection, table: Table, path: Path, refs: dict[str, Reference]
) -> TableWriter:
    writer = TableWriter(table, path)
    key_columns = [table.columns.keys().index(c) for c in KEY_COLUMNS.get(table.name, ())]
    pk = table.columns.keys().index(next(iter(table.primary_key.columns)).name)
    query = select(*(selected(c) for c in table.columns)).order_by(*table.primary_key.columns)
    try:
        result = await conn.stream(query)
        async for rows in result.partitions(PARTITION):
            writer.write(rows)
            for row in rows:
                for index in key_columns:
                    if row[index]:
                        refs.setdefault(
                            row[index], Reference(table.name, table.columns[index].name, row[pk])
                        )
    finally:
        writer.close()
    return writer


def revision_of(sync_conn: Any) -> str | None:
    """The schema revision, read on the caller's connection (inside its snapshot)."""
    return MigrationContext.configure(sync_conn).get_current_revision()


async def _snapshot(
    db: Database, scratch: Path
) -> tuple[datetime, str, list[TableWriter], dict[str, Reference]]:
    refs: dict[str, Reference] = {}
    async with consistent_read(db) as conn:
        at = await db_now(conn)
        revision = await conn.run_sync(revision_of)
        if revision != head_revision():
            raise BackupError(
                f"the database {db.display_url} is at schema {revision}, this BatchOps at "
                f"{head_revision()}: run `batchops migrate` (or back up with the matching version)."
            )
        writers = [
            await _dump_table(conn, table, scratch / f"{table.name}.jsonl.gz", refs)
            for table in backed_up_tables()
        ]
    return at, revision, writers, refs


async def write_backup(
    db: Database, settings: Settings, *, keep: int | None = None
) -> BackupResult:
    """Write one complete backup to `retention.backup_url`, then apply retention."""
    location = open_location(settings)
    source = open_store(settings)
    scratch = settings.scratch_path / f"backup-{uuid.uuid4().hex}"
    scratch.mkdir(parents=True)
    ref: BackupRef | None = None
    try:
        at, revision, writers, refs = await _snapshot(db, scratch)
        name = backup_name(at)
        ref = BackupRef(location, f"{name}/")
        manifest = Manifest(
            name=name,
            created_at=at.isoformat(),
            revision=revision,
            backend=db.url.get_backend_name(),
            database=db.display_url,
            storage=source.url,
        )
        for writer in writers:
            key = f"{TABLES}{writer.path.name}"
            stored = await location.put_file(ref.key(key), writer.path, move=True)
            manifest.tables.append(
                TableEntry(writer.table.name, key, writer.rows, stored.size, stored.sha256)
            )
        manifest.objects, manifest.missing = await copy_out(source, ref, refs, scratch)
        manifest.finished_at = datetime.now(UTC).isoformat()
        await location.put_bytes(ref.key(MANIFEST), manifest.to_json())
    except BaseException as exc:
        if ref is not None:
            with suppress(Exception):
                await location.delete_prefix(ref.prefix)
        if isinstance(exc, StorageError):
            raise BackupError(f"backup failed: {exc} {exc.hint}".strip()) from None
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert ref is not None
    stale = timedelta(seconds=settings.worker.job_timeout) + timedelta(hours=1)
    keep_n = keep if keep is not None else settings.retention.backup_keep
    removed = await prune(location, keep=max(1, keep_n), now=at, stale=stale)
    return BackupResult(name, ref.where, manifest, removed)
