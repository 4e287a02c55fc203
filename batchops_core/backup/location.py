"""Where backups live, how one is named and found, and retention.

A location is any store `store_for` opens (`retention.backup_url`: a folder, `file:///…`,
`s3://BUCKET/PREFIX`; empty = `<data_dir>/backups`). Each backup is the folder
`backup-<UTC stamp>/` under it, and is complete once its `manifest.json` exists: the manifest is
written last, so a crash or a cancelled run leaves a folder without one, which nothing restores
and retention removes once it is older than any run that could still be writing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from batchops_core.backup.errors import BackupError
from batchops_core.backup.manifest import MANIFEST
from batchops_core.infra.config import Settings
from batchops_core.storage import ObjectStore, StorageError, store_for

PREFIX = "backup-"
STAMP = "%Y%m%dT%H%M%S%fZ"
LATEST = "latest"


def backup_name(at: datetime) -> str:
    return f"{PREFIX}{at.astimezone(UTC):{STAMP}}"


def stamp_of(name: str) -> datetime | None:
    try:
        return datetime.strptime(name.removeprefix(PREFIX), STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def location_url(settings: Settings) -> str:
    return settings.retention.backup_url or str(settings.data_path / "backups")


def open_location(settings: Settings) -> ObjectStore:
    try:
        return store_for(location_url(settings), settings)
    except StorageError as exc:
        raise BackupError(f"[retention] backup_url: {exc}") from None


@dataclass(frozen=True)
class BackupRef:
    """One backup: a store and the key prefix of its folder in it ("" when the store is it)."""

    store: ObjectStore
    prefix: str

    def key(self, relative: str) -> str:
        return f"{self.prefix}{relative}"

    @property
    def where(self) -> str:
        """`s3://b/backups/backup-… at http://endpoint`: the store's printable URL, extended."""
        base, at, endpoint = self.store.url.partition(" at ")
        return f"{base.rstrip('/')}/{self.prefix}".rstrip("/") + at + endpoint


@dataclass(frozen=True)
class Listing:
    complete: list[str]
    incomplete: list[str]


async def list_backups(store: ObjectStore) -> Listing:
    """Backup names under `store`, oldest first (the stamp sorts as text)."""
    names: set[str] = set()
    complete: set[str] = set()
    try:
        async for info in store.list():  # S3 prefixes match whole path segments, not "backup-"
            name, _, rest = info.key.partition("/")
            if stamp_of(name) is None:
                continue
            names.add(name)
            if rest == MANIFEST:
                complete.add(name)
    except StorageError as exc:
        raise BackupError(f"cannot list the backups in {store.url}: {exc}") from None
    return Listing(sorted(complete), sorted(names - complete))


async def prune(store: ObjectStore, *, keep: int, now: datetime, stale: timedelta) -> list[str]:
    """Keep the `keep` newest complete backups; remove older ones, and incomplete ones older than
    `stale` (no run can still be writing them: a run is stopped at the job timeout)."""
    listing = await list_backups(store)
    doomed = listing.complete[: max(0, len(listing.complete) - keep)]
    for name in listing.incomplete:
        stamp = stamp_of(name)
        if stamp is not None and stamp < now - stale:
            doomed.append(name)
    for name in doomed:
        try:
            await store.delete_prefix(f"{name}/")
        except StorageError as exc:
            raise BackupError(f"cannot remove the old backup {name}: {exc}") from None
    return sorted(doomed)


async def resolve(settings: Settings, backup: str) -> BackupRef:
    """The backup a person named: a folder or URL of one backup, or a name under backup_url
    (`latest` for the newest complete one)."""
    if "://" in backup or Path(backup).expanduser().is_dir():
        try:
            return BackupRef(store_for(backup.rstrip("/"), settings), "")
        except StorageError as exc:
            raise BackupError(str(exc)) from None
    store = open_location(settings)
    name = backup.strip("/")
    if name == LATEST:
        listing = await list_backups(store)
        if not listing.complete:
            raise BackupError(f"there is no complete backup in {store.url} yet.")
        name = listing.complete[-1]
    if stamp_of(name) is None:
        raise BackupError(
            f"{backup!r} is neither a folder, a file:// or s3:// URL of a backup, nor a backup "
            f"name like backup-20261203T020000000000Z (see `batchops restore --list`)."
        )
    return BackupRef(store, f"{name}/")
