"""The shape of storage keys: relative POSIX paths a user's file name can never escape."""

from __future__ import annotations

import uuid

from batchops_core.storage.base import StorageError

UPLOADS = "uploads"
EXPORTS = "exports"


def check_key(key: str) -> str:
    """Return `key` if it is a safe relative key; raise StorageError otherwise."""
    parts = key.split("/")
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or "\x00" in key
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise StorageError(
            f"{key!r} is not a storage key (a relative path such as uploads/12/a.csv)"
        )
    return key


def new_upload_key(stored_name: str) -> str:
    """A fresh key for an intake: unique before the upload row exists, so the object can be put
    outside the database transaction (a put never holds a lock)."""
    return check_key(f"{UPLOADS}/{uuid.uuid4().hex}/{stored_name}")


def export_key(upload_id: int, name: str) -> str:
    """Where an upload's report or fix-list is published; a re-run overwrites the same key."""
    return check_key(f"{EXPORTS}/{upload_id}/{name}")


def export_prefix(upload_id: int) -> str:
    """The folder-like prefix of every object one upload published."""
    return f"{EXPORTS}/{upload_id}/"
