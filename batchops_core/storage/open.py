"""Build the store a URL names: `file:///folder` (or a plain folder) or `s3://BUCKET/PREFIX`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from batchops_core.infra.config import Settings, storage_url_problem
from batchops_core.storage.base import ObjectStore, StorageError

_cache: dict[tuple[object, ...], ObjectStore] = {}


def store_for(url: str, settings: Settings) -> ObjectStore:
    """The store at `url`, with [storage]'s endpoint and credentials for `s3://` URLs."""
    from batchops_core.storage.local import LocalStore

    problem = storage_url_problem(url)
    if problem:
        raise StorageError(f"storage url {problem}")
    if "://" not in url:
        return LocalStore(Path(url).expanduser())
    parts = urlsplit(url)
    if parts.scheme == "file":
        return LocalStore(Path(unquote(parts.path)))
    from batchops_core.storage.s3 import S3Store

    cfg = settings.storage
    return S3Store(
        parts.netloc,
        parts.path.strip("/"),
        endpoint_url=cfg.endpoint_url,
        region=cfg.region,
        access_key=cfg.access_key.get(),
        secret_key=cfg.secret_key.get(),
        timeout=cfg.timeout,
    )


def open_store(settings: Settings) -> ObjectStore:
    """This process's store for `settings` (one client per configuration, reused)."""
    cfg = settings.storage
    key = (settings.storage_url, cfg.endpoint_url, cfg.region, cfg.access_key, cfg.secret_key)
    store = _cache.get(key)
    if store is None:
        store = _cache[key] = store_for(settings.storage_url, settings)
    return store
