"""The S3-compatible backend (AWS S3, MinIO, Ceph RGW, Garage) through obstore.

Why obstore: it is the Python face of Apache Arrow's Rust `object_store` crate — async-native,
streams files as multipart uploads (parts of 8 MB, never the whole file in memory), retries with
backoff, and one small wheel with no botocore/aiohttp stack. Its per-request cost in the event
loop is a few microseconds of Python (~2 ms a small PUT to a local server, measured), which
matters because a daemon's small uploads are bound by its event loop.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import obstore
from obstore.store import S3Store as _ObS3

from batchops_core.storage.base import (
    CHUNK,
    ObjectInfo,
    ObjectMissing,
    ObjectStore,
    StorageError,
    StoredObject,
)
from batchops_core.storage.keys import check_key

PART = 8 * 1024 * 1024


def _hint(url: str) -> str:
    return (
        f"Check that the bucket of {url} exists and that [storage] endpoint_url, region, "
        "access_key and secret_key are right (batchops doctor tries a write, read and delete)."
    )


class S3Store(ObjectStore):
    def __init__(
        self,
        bucket: str,
        prefix: str,
        *,
        endpoint_url: str = "",
        region: str = "us-east-1",
        access_key: str = "",
        secret_key: str = "",
        timeout: float = 30.0,
    ) -> None:
        self.url = f"s3://{bucket}/{prefix}".rstrip("/") + (
            f" at {endpoint_url}" if endpoint_url else ""
        )
        options: dict[str, Any] = {"region": region}
        if endpoint_url:
            options["endpoint"] = endpoint_url
            options["virtual_hosted_style_request"] = False
        if access_key:
            options["access_key_id"] = access_key
            options["secret_access_key"] = secret_key
        client = {"timeout": f"{max(1, round(timeout))}s", "connect_timeout": "5s"}
        if endpoint_url.startswith("http://"):
            client["allow_http"] = True  # type: ignore[assignment]
        self._store = _ObS3(
            bucket,
            prefix=prefix or None,
            client_options=client,  # type: ignore[arg-type]
            retry_config={"max_retries": 3, "retry_timeout": timedelta(seconds=timeout)},  # type: ignore[typeddict-item]
            **options,
        )

    def _fail(self, key: str, exc: Exception) -> StorageError:
        if isinstance(exc, FileNotFoundError):
            text = str(exc)
            if "NoSuchBucket" in text:
                return StorageError(
                    f"the bucket of {self.url} does not exist", hint=_hint(self.url)
                )
            return ObjectMissing(
                f"{key} is not in storage ({self.url})",
                hint="Check [storage] url on this host; restore the file from a backup.",
            )
        first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        return StorageError(f"{self.url}: {key}: {first}", hint=_hint(self.url))

    async def put_file(self, key: str, path: Path, *, move: bool = False) -> StoredObject:
        check_key(key)
        digest = hashlib.sha256()
        size = 0

        def chunks() -> Any:
            nonlocal size
            with path.open("rb") as handle:
                while chunk := handle.read(PART):
                    digest.update(chunk)
                    size += len(chunk)
                    yield chunk

        try:
            if path.stat().st_size <= PART:
                data = path.read_bytes()
                digest.update(data)
                size = len(data)
                await obstore.put_async(self._store, key, data, use_multipart=False)
            else:
                await obstore.put_async(self._store, key, chunks(), chunk_size=PART)
        except OSError as exc:
            raise self._fail(key, exc) from None
        except Exception as exc:  # obstore's own errors (network, auth)
            raise self._fail(key, exc) from None
        if move:
            path.unlink(missing_ok=True)
        return StoredObject(key, size, digest.hexdigest())

    async def put_bytes(self, key: str, data: bytes) -> StoredObject:
        check_key(key)
        try:
            await obstore.put_async(self._store, key, data, use_multipart=False)
        except Exception as exc:
            raise self._fail(key, exc) from None
        return StoredObject(key, len(data), hashlib.sha256(data).hexdigest())

    async def stream(self, key: str) -> AsyncIterator[bytes]:
        check_key(key)
        try:
            result = await obstore.get_async(self._store, key)
        except Exception as exc:
            raise self._fail(key, exc) from None
        try:
            async for chunk in result.stream(min_chunk_size=CHUNK):
                yield bytes(chunk)
        except Exception as exc:
            raise self._fail(key, exc) from None

    async def head(self, key: str) -> ObjectInfo | None:
        check_key(key)
        try:
            meta = await obstore.head_async(self._store, key)
        except FileNotFoundError as exc:
            if "NoSuchBucket" in str(exc):
                raise self._fail(key, exc) from None
            return None
        except Exception as exc:
            raise self._fail(key, exc) from None
        return ObjectInfo(key, int(meta["size"]), meta["last_modified"])

    async def delete(self, key: str) -> bool:
        if await self.head(key) is None:
            return False
        try:
            await obstore.delete_async(self._store, key)
        except FileNotFoundError:
            return False
        except Exception as exc:
            raise self._fail(key, exc) from None
        return True

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        try:
            async for batch in obstore.list(self._store, prefix=prefix or None):
                for meta in batch:
                    yield ObjectInfo(meta["path"], int(meta["size"]), meta["last_modified"])
        except Exception as exc:
            raise self._fail(prefix, exc) from None

    async def delete_prefix(self, prefix: str) -> int:
        keys = [info.key async for info in self.list(prefix)]
        if keys:
            try:
                for start in range(0, len(keys), 1000):
                    await obstore.delete_async(self._store, keys[start : start + 1000])
            except Exception as exc:
                raise self._fail(prefix, exc) from None
        return len(keys)
