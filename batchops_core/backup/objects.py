"""The stored objects of a backup: copied out of the store by a backup, back in by a restore.

Each object the database names is copied to `objects/<key>` of the backup with its size and
sha256 (computed while it is written); a restore checks the sha256 of every copy before it puts
it back under its key. A handful of copies run at once, which hides an object store's
per-request latency without opening hundreds of connections.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from batchops_core.backup.location import BackupRef
from batchops_core.backup.manifest import OBJECTS, MissingObject, ObjectEntry
from batchops_core.models import STORAGE_KEY_COLUMNS, Upload
from batchops_core.storage import ObjectMissing, ObjectStore, StorageError, check_key

log = logging.getLogger(__name__)

KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    Upload.__tablename__: tuple(c.name for c in STORAGE_KEY_COLUMNS)
}
"""The columns that hold storage keys, by table."""

COPIES_AT_ONCE = 8

T = TypeVar("T")


@dataclass(frozen=True)
class Reference:
    """The first row that names a key (for the manifest's list of missing objects)."""

    table: str
    column: str
    row_id: Any


async def bounded(items: Iterable[T], work: Callable[[T], Awaitable[None]]) -> None:
    """`work(item)` for every item, COPIES_AT_ONCE at a time; the first failure stops the rest
    (no copy goes on writing after the caller has given up and cleaned up)."""
    pending = iter(items)

    async def worker() -> None:
        for item in pending:  # one shared iterator: each item is taken once
            await work(item)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(COPIES_AT_ONCE):
                group.create_task(worker())
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None


async def _copy_out(source: ObjectStore, ref: BackupRef, key: str, scratch: Path) -> ObjectEntry:
    target = ref.key(OBJECTS + key)
    local = source.local_path(key)
    if local is None:
        temp = await source.fetch(key, scratch / uuid.uuid4().hex)
        stored = await ref.store.put_file(target, temp, move=True)
    else:
        try:
            stored = await ref.store.put_file(target, local)
        except StorageError:
            if not local.is_file():  # never there, or purged while the backup ran
                raise ObjectMissing(f"{key} is not in storage ({source.url})") from None
            raise
    return ObjectEntry(key, stored.size, stored.sha256)


async def copy_out(
    source: ObjectStore, ref: BackupRef, refs: dict[str, Reference], scratch: Path
) -> tuple[list[ObjectEntry], list[MissingObject]]:
    """Copy every referenced object into the backup; the missing ones are listed, not fatal."""
    copied: list[ObjectEntry] = []
    missing: list[MissingObject] = []

    async def one(item: tuple[str, Reference]) -> None:
        key, where = item
        try:
            check_key(key)
        except StorageError:
            reason = "not a storage key"
        else:
            try:
                copied.append(await _copy_out(source, ref, key, scratch))
                return
            except ObjectMissing as exc:
                reason = str(exc)
        log.warning(
            "backup %s: %s.%s of row %s names %s, which cannot be copied: %s",
            ref.prefix.rstrip("/"),
            where.table,
            where.column,
            where.row_id,
            key,
            reason,
        )
        missing.append(MissingObject(key, reason, where.table, where.column, where.row_id))

    await bounded(refs.items(), one)
    return sorted(copied, key=lambda o: o.key), sorted(missing, key=lambda m: m.key)


async def copy_in(
    ref: BackupRef, objects: list[ObjectEntry], target: ObjectStore, scratch: Path
) -> None:
    """Put every object of the backup back under its key, each checked against its sha256."""

    async def one(entry: ObjectEntry) -> None:
        temp = await ref.store.fetch(
            ref.key(OBJECTS + entry.key), scratch / uuid.uuid4().hex, sha256=entry.sha256
        )
        await target.put_file(entry.key, temp, move=True)

    await bounded(objects, one)
