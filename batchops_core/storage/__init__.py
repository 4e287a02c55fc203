"""Where files live: one interface over the local data directory and any S3-compatible store.

The database stores *keys* (`uploads/3f…/marks.csv`, `exports/12/marks_report.csv`), never a
host's path, so every host — TUI, CLI, daemons on other machines — reads the same objects. Work
happens on a local scratch copy (`scratch.py`); only finished files are put in storage. A put is
atomic (a temporary file renamed, or one S3 PUT / completed multipart upload): a crash leaves an
orphan object that `orphans.py` sweeps, never half an object under a key the database names.
"""

from batchops_core.storage.base import (
    ChecksumMismatch,
    ObjectInfo,
    ObjectMissing,
    ObjectStore,
    StorageError,
    StoredObject,
)
from batchops_core.storage.keys import check_key, export_key, export_prefix, new_upload_key
from batchops_core.storage.open import open_store, store_for

__all__ = [
    "ChecksumMismatch",
    "ObjectInfo",
    "ObjectMissing",
    "ObjectStore",
    "StorageError",
    "StoredObject",
    "check_key",
    "export_key",
    "export_prefix",
    "new_upload_key",
    "open_store",
    "store_for",
]
