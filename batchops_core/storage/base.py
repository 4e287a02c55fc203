"""The storage interface and its errors, shared by the local and the S3 backends."""

from __future__ import annotations

import abc
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

CHUNK = 1024 * 1024


class StorageError(Exception):
    """The object store refused or could not be reached; the message says which and what to do."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


class ObjectMissing(StorageError):
    """A key the database names is not in storage: an operator problem (wrong [storage] url,
    bucket emptied, restore without files), never fixed by uploading the file again."""


class ChecksumMismatch(StorageError):
    """The object read back is not the one that was stored (sha256 differs)."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime


class ObjectStore(abc.ABC):
    """Keys in, bytes out. Every method is async; a large file is streamed, never held whole."""

    url: str
    """Printable location (no secrets), for messages and `doctor`."""

    @abc.abstractmethod
    async def put_file(self, key: str, path: Path, *, move: bool = False) -> StoredObject:
        """Store a local file under `key` atomically (hashing it on the way); `move` lets the
        local backend rename instead of copying when `path` is its own staging file."""

    @abc.abstractmethod
    async def put_bytes(self, key: str, data: bytes) -> StoredObject: ...

    @abc.abstractmethod
    def stream(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes in chunks; raises ObjectMissing when the key is absent."""

    @abc.abstractmethod
    async def head(self, key: str) -> ObjectInfo | None: ...

    @abc.abstractmethod
    async def delete(self, key: str) -> bool:
        """Remove `key`; False when it was not there."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]: ...

    def local_path(self, key: str) -> Path | None:
        """The object as a file of this host, when the backend is a local folder (zero copy)."""
        return None

    async def read_bytes(self, key: str, *, limit: int | None = None) -> bytes:
        """The whole object (or its first `limit` bytes): for small things such as previews."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self.stream(key):
            parts.append(chunk)
            size += len(chunk)
            if limit is not None and size >= limit:
                break
        data = b"".join(parts)
        return data if limit is None else data[:limit]

    async def fetch(self, key: str, dest: Path, *, sha256: str | None = None) -> Path:
        """Copy the object to the local file `dest` (atomically), checking `sha256` if given."""
        import os

        dest.parent.mkdir(parents=True, exist_ok=True)
        temp = dest.with_name(f".{dest.name}.part")
        digest = hashlib.sha256()
        try:
            with temp.open("wb") as out:
                async for chunk in self.stream(key):
                    digest.update(chunk)
                    out.write(chunk)
            if sha256 and digest.hexdigest() != sha256:
                raise ChecksumMismatch(
                    f"{key} in {self.url} does not match its recorded sha256 "
                    f"({digest.hexdigest()[:12]}… instead of {sha256[:12]}…)",
                    hint="The stored object was changed or damaged; restore it from a backup.",
                )
            os.replace(temp, dest)
        finally:
            temp.unlink(missing_ok=True)
        return dest

    async def local_copy(self, key: str, scratch: Path, *, sha256: str | None = None) -> Path:
        """A local file with the object's bytes: the stored file itself on the local backend,
        else a fresh copy at `scratch / key` (this host's own folder)."""
        local = self.local_path(key)
        if local is None:
            return await self.fetch(key, scratch / key, sha256=sha256)
        if not local.is_file():
            raise ObjectMissing(
                f"{key} is not in storage ({self.url})",
                hint="Check [storage] url on this host; restore the file from a backup.",
            )
        return local

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object under `prefix` (a folder-like key ending in '/')."""
        keys = [info.key async for info in self.list(prefix)]
        removed = 0
        for key in keys:
            removed += await self.delete(key)
        return removed

    async def probe(self) -> None:
        """Write, read back and delete a small object; raise StorageError saying what failed."""
        import uuid

        key = f"probe/{uuid.uuid4().hex}"
        payload = b"batchops storage probe"
        await self.put_bytes(key, payload)
        try:
            back = await self.read_bytes(key)
            if back != payload:
                raise StorageError(f"{self.url} returned other bytes than were written")
        finally:
            await self.delete(key)

    async def sweep_staging(self, older_than: datetime) -> int:
        """Remove temporary files of puts a crash interrupted (the local backend's only: an S3
        put is one request, or a multipart upload the bucket's lifecycle rule aborts)."""
        return 0

    async def close(self) -> None:
        return None


def sha256_file(path: Path) -> tuple[str, int]:
    """sha256 and size of a local file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
