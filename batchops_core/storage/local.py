"""The local backend: keys are files under one folder (the embedded default, one host)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from batchops_core.storage.base import (
    CHUNK,
    ObjectInfo,
    ObjectMissing,
    ObjectStore,
    StorageError,
    StoredObject,
    sha256_file,
)
from batchops_core.storage.keys import check_key

STAGING = ".staging"
"""Temporary files of puts in progress, inside the root so that the final rename is atomic."""


def _copy_hashing(source: Path, temp: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as src, temp.open("wb") as out:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), size


def _same_device(path: Path, root: Path) -> bool:
    """Whether a rename from `path` into the store is possible (and so atomic and free)."""
    try:
        return path.stat().st_dev == root.stat().st_dev
    except OSError:
        return False


class LocalStore(ObjectStore):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def staging_file(self) -> Path:
        """A fresh temporary file on the store's own file system (for `put_file(move=True)`)."""
        folder = self.root / STAGING
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{uuid.uuid4().hex}.part"

    def _put(self, key: str, path: Path, move: bool) -> StoredObject:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if move and _same_device(path, self.root):
                sha, size = sha256_file(path)
                os.replace(path, target)
            else:
                temp = self.staging_file()
                try:
                    sha, size = _copy_hashing(path, temp)
                    os.replace(temp, target)
                finally:
                    temp.unlink(missing_ok=True)
                if move:
                    path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot write {key} under {self.root}: {exc.strerror or exc}",
                hint="Check free space and permissions of the storage folder.",
            ) from None
        return StoredObject(key, size, sha)

    async def put_file(self, key: str, path: Path, *, move: bool = False) -> StoredObject:
        return await asyncio.to_thread(self._put, key, path, move)

    async def put_bytes(self, key: str, data: bytes) -> StoredObject:
        temp = self.staging_file()
        temp.write_bytes(data)
        return await self.put_file(key, temp, move=True)

    async def stream(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise ObjectMissing(
                f"{key} is not in storage ({self.url})",
                hint="Check [storage] url on this host; restore the file from a backup.",
            ) from None
        with handle:
            while chunk := handle.read(CHUNK):
                yield chunk

    async def head(self, key: str) -> ObjectInfo | None:
        try:
            stat = self._path(key).stat()
        except FileNotFoundError:
            return None
        return ObjectInfo(key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))

    async def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        for parent in path.parents:  # drop folders the key left empty, up to the root
            if parent == self.root:
                break
            try:
                parent.rmdir()
            except OSError:
                break
        return True

    async def sweep_staging(self, older_than: datetime) -> int:
        folder = self.root / STAGING
        removed = 0
        for path in folder.glob("*.part") if folder.is_dir() else ():
            with contextlib.suppress(FileNotFoundError):
                if datetime.fromtimestamp(path.stat().st_mtime, UTC) < older_than:
                    path.unlink()
                    removed += 1
        return removed

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        base = self.root
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        for dirpath, dirnames, filenames in os.walk(base / folder if folder else base):
            dirnames[:] = sorted(d for d in dirnames if d != STAGING)
            rel_dir = Path(dirpath).relative_to(base).as_posix()
            for name in sorted(filenames):
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                if not key.startswith(prefix):
                    continue
                stat = (Path(dirpath) / name).stat()
                yield ObjectInfo(key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))

    async def delete_prefix(self, prefix: str) -> int:
        removed = 0
        async for _ in self.list(prefix):
            removed += 1
        folder = self.root / prefix.rstrip("/")
        if prefix.endswith("/") and folder.is_dir():
            await asyncio.to_thread(shutil.rmtree, folder, True)
            return removed
        return await super().delete_prefix(prefix)
