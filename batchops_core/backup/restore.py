"""Read a backup back: its stored objects into the configured store, its rows into a database.

Order matters for what a failure leaves behind. Everything that can be checked before the
database is touched is checked first: the manifest, the schema revisions, the target's data
(`--force`), the sha256 of every table file and every object. Objects are put back before the
rows that name them (a failure leaves unreferenced objects, never rows naming absent ones). The
target is then brought to the backup's schema revision (dropping BatchOps' tables first when it
is at another one), and all rows are replaced in ONE transaction: the seed rows of the
migrations are deleted, the backup's rows inserted parents first, PostgreSQL's sequences moved
past the restored ids. A failure in it rolls back to the freshly migrated state. Last, the
target is migrated on to this code's head, so the data migrations since the backup also run.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, delete, func, insert, inspect, select, text
from sqlalchemy import column as sa_column
from sqlalchemy import table as sa_table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import NullType

from batchops_core import audit
from batchops_core.backup.errors import BackupError, RestoreRefused
from batchops_core.backup.location import BackupRef, list_backups, open_location, resolve
from batchops_core.backup.manifest import MANIFEST, Manifest, MissingObject
from batchops_core.backup.objects import copy_in
from batchops_core.backup.rows import TableReader, insert_type, model_table
from batchops_core.backup.snapshot import consistent_read, revision_of
from batchops_core.errors import SchemaTooNew
from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database, open_database
from batchops_core.infra.migrate import head_revision, known_revisions, upgrade
from batchops_core.models import Base
from batchops_core.permissions import Actor
from batchops_core.storage import StorageError, open_store

LIVE_TABLES = ("users", "uploads")
"""A target with a row in one of these holds someone's data: replaced only with `--force`."""

BATCH = 2000


@dataclass(frozen=True)
class RestoreReport:
    backup: str
    source: str
    database: str
    created_at: str
    revision: str
    schema: str
    """The target's schema revision after the restore (this code's head)."""
    tables: dict[str, int]
    objects: int
    object_bytes: int
    missing: list[MissingObject] = field(default_factory=list)
    replaced: dict[str, int] = field(default_factory=dict)
    """Rows the target held in LIVE_TABLES before a forced restore replaced them."""

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "rows": self.rows}


async def read_manifest(ref: BackupRef) -> Manifest:
    try:
        data = await ref.store.read_bytes(ref.key(MANIFEST))
    except StorageError as exc:
        raise BackupError(
            f"{ref.where} holds no {MANIFEST}: it is not a backup, or an incomplete one "
            f"(a backup that did not finish). {exc.hint}".strip()
        ) from None
    return Manifest.from_json(data, f"{ref.where}/{MANIFEST}")


@dataclass(frozen=True)
class _Target:
    tables: set[str]
    revision: str | None
    live_rows: dict[str, int]


async def _inspect_target(db: Database) -> _Target:
    async with consistent_read(db) as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        revision = await conn.run_sync(revision_of) if "alembic_version" in names else None
        live = {}
        for name in LIVE_TABLES:
            if name in names:
                live[name] = int(
                    (await conn.execute(select(func.count()).select_from(sa_table(name)))).scalar()
                    or 0
                )
    return _Target(names, revision, live)


def _refusal(db: Database, target: _Target) -> str:
    held = " and ".join(f"{n} {t if n != 1 else t[:-1]}" for t, n in target.live_rows.items() if n)
    return (
        f"the database {db.display_url} already holds data ({held}); restoring would replace "
        "it. Restore into another database with --into URL, or add --force to empty this one "
        "first (stop the daemons and close the TUIs that use it)."
    )


def _ours() -> set[str]:
    return {*Base.metadata.tables, "alembic_version"}


def _drop_ours(sync_conn: Any) -> None:
    """Drop BatchOps' tables (whatever revision made them); any other table stays."""
    ours = _ours()
    meta = MetaData()
    meta.reflect(sync_conn, only=lambda name, _meta: name in ours)
    meta.drop_all(sync_conn)


async def _schema_at(db: Database, target: _Target, revision: str) -> None:
    if target.revision != revision:
        if target.tables & _ours():
            async with db.engine.begin() as conn:
                await conn.run_sync(_drop_ours)
        await upgrade(db, revision)


def _insert_table(name: str, columns: list[str]) -> Any:
    model = model_table(name)
    known = model.c if model is not None else {}
    return sa_table(
        name, *(sa_column(c, insert_type(known[c]) if c in known else NullType()) for c in columns)
    )


async def _reset_sequences(conn: AsyncConnection, names: list[str]) -> None:
    """Move each PostgreSQL sequence past the restored ids (inserting ids does not)."""
    for name in names:
        model = model_table(name)
        col = model.autoincrement_column if model is not None else None
        if col is None:
            continue
        await conn.execute(
            text(
                f'SELECT setval(pg_get_serial_sequence(:t, :c), COALESCE(MAX("{col.name}"), 0) '
                f'+ 1, false) FROM "{name}"'
            ),
            {"t": name, "c": col.name},
        )


async def _load(db: Database, manifest: Manifest, files: dict[str, Path]) -> dict[str, int]:
    counts: dict[str, int] = {}
    async with db.engine.begin() as conn:
        present = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        for table in reversed(Base.metadata.sorted_tables):
            if table.name in present:
                await conn.execute(delete(table))
        for entry in manifest.tables:
            counts[entry.name] = 0
            try:
                with TableReader(files[entry.name]) as reader:
                    target = _insert_table(entry.name, reader.columns)
                    for rows in reader.batches(BATCH):
                        await conn.execute(insert(target), rows)
                        counts[entry.name] += len(rows)
            except DBAPIError as exc:
                detail = str(exc.orig or exc).strip().splitlines()[0]
                raise BackupError(
                    f"restoring table {entry.name} into {db.display_url} failed: {detail}. "
                    "Nothing was restored (the transaction rolled back)."
                ) from None
            if counts[entry.name] != entry.rows:
                raise BackupError(
                    f"the table file of {entry.name} holds {counts[entry.name]} rows, the "
                    f"manifest says {entry.rows}: the backup is damaged."
                )
        if db.url.get_backend_name() == "postgresql":
            await _reset_sequences(conn, list(counts))
    return counts


async def _fetch_tables(ref: BackupRef, manifest: Manifest, scratch: Path) -> dict[str, Path]:
    files = {}
    for entry in manifest.tables:
        files[entry.name] = await ref.store.fetch(
            ref.key(entry.key), scratch / "tables" / Path(entry.key).name, sha256=entry.sha256
        )
    return files


_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def _async_url(url: str) -> str:
    """`--into` with the async driver BatchOps runs on (`postgresql://…` is accepted as is)."""
    scheme, sep, rest = url.partition("://")
    scheme = {"postgres": "postgresql"}.get(scheme, scheme)
    if sep and scheme in _DRIVERS:
        return f"{_DRIVERS[scheme]}://{rest}"
    if sep and scheme in _DRIVERS.values():
        return url
    raise BackupError(
        f"--into {url!r} is not a database URL BatchOps can use: sqlite:////absolute/file.db "
        "or postgresql://user@host:5432/name."
    )


async def restore_backup(
    settings: Settings, backup: str, *, actor: Actor, into: str | None = None, force: bool = False
) -> RestoreReport:
    """Restore `backup` (a folder, a URL, or a name under backup_url) into the configured
    database or `into`, and its objects into the configured store."""
    ref = await resolve(settings, backup)
    manifest = await read_manifest(ref)
    if manifest.revision not in known_revisions():
        raise BackupError(
            f"{manifest.name} has schema {manifest.revision}, which this BatchOps does not know: "
            "it was written by a newer version. Restore it with that version."
        )
    db = open_database(settings, _async_url(into) if into else None)
    scratch = settings.scratch_path / f"restore-{uuid.uuid4().hex}"
    try:
        await db.check()
        target = await _inspect_target(db)
        if target.revision is not None and target.revision not in known_revisions():
            raise SchemaTooNew(
                f"the database {db.display_url} was migrated by a newer BatchOps (schema "
                f"{target.revision}); restore into another database with --into URL."
            )
        if any(target.live_rows.values()) and not force:
            raise RestoreRefused(_refusal(db, target))
        scratch.mkdir(parents=True)
        files = await _fetch_tables(ref, manifest, scratch)
        await copy_in(ref, manifest.objects, open_store(settings), scratch)
        await _schema_at(db, target, manifest.revision)
        counts = await _load(db, manifest, files)
        if manifest.revision != head_revision():
            await upgrade(db)
        report = RestoreReport(
            backup=manifest.name,
            source=ref.where,
            database=db.display_url,
            created_at=manifest.created_at,
            revision=manifest.revision,
            schema=head_revision(),
            tables=counts,
            objects=len(manifest.objects),
            object_bytes=manifest.object_bytes,
            missing=manifest.missing,
            replaced={k: v for k, v in target.live_rows.items() if v},
        )
        async with db.unit() as session:
            audit.record(
                session,
                actor=actor,
                action="backup.restore",
                target_type="backup",
                target_name=manifest.name,
                detail=f"{report.rows} rows and {report.objects} objects from {ref.where}",
            )
        return report
    except StorageError as exc:
        raise BackupError(f"restore failed: {exc} {exc.hint}".strip()) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        await db.dispose()


@dataclass(frozen=True)
class BackupInfo:
    """One backup of the location, for `batchops restore --list`."""

    name: str
    complete: bool
    created_at: str = ""
    rows: int = 0
    objects: int = 0
    missing: int = 0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


async def catalogue(settings: Settings) -> tuple[str, list[BackupInfo]]:
    """The location's URL and its backups, oldest first (incomplete ones included, marked)."""
    store = open_location(settings)
    listing = await list_backups(store)
    found: list[BackupInfo] = []
    for name in sorted([*listing.complete, *listing.incomplete]):
        if name not in listing.complete:
            found.append(BackupInfo(name, complete=False))
            continue
        manifest = await read_manifest(BackupRef(store, f"{name}/"))
        found.append(
            BackupInfo(
                name,
                True,
                manifest.created_at,
                manifest.rows,
                len(manifest.objects),
                len(manifest.missing),
            )
        )
    return store.url, found
