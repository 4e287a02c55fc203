"""Folder sources: a path and a glob; every new file (by checksum) becomes an upload.

A file is taken only when it has settled: its last change is at least `settle_seconds` old and
its size and mtime are the same after hashing as before. A file still being written is left for
the next pass. A taken file's checksum is remembered per source (`source_files`), so renaming
or touching it never makes it new; a changed content does. The file's day is the local date of
its last change, which is when the department dropped it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from batchops_core.sources.http import FetchFailed


@dataclass(frozen=True)
class DroppedFile:
    path: Path
    sha256: str
    size: int
    day: date


def _hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _scan(config: dict[str, Any], tz: str, now: float) -> tuple[list[DroppedFile], list[str]]:
    root = Path(config["path"]).expanduser()
    if not root.is_dir():
        raise FetchFailed(f"the folder {root} does not exist or is not a directory.")
    settle = float(config.get("settle_seconds", 2))
    taken, waiting = [], []
    for path in sorted(root.glob(config.get("glob", "*"))):
        if path.is_symlink() or not path.is_file() or path.name.startswith("."):
            continue
        before = path.stat()
        if now - before.st_mtime < settle:
            waiting.append(path.name)
            continue
        digest = _hash(path)
        after = path.stat()
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            waiting.append(path.name)
            continue
        day = datetime.fromtimestamp(after.st_mtime, ZoneInfo(tz)).date()
        taken.append(DroppedFile(path, digest, after.st_size, day))
    return taken, waiting


async def scan(config: dict[str, Any], tz: str) -> tuple[list[DroppedFile], list[str]]:
    """Settled files (path, checksum, day) and the names left for the next pass."""
    return await asyncio.to_thread(_scan, config, tz, time.time())


async def probe_folder(config: dict[str, Any]) -> dict[str, Any]:
    files, waiting = await scan(config, "UTC")
    return {
        "message": f"{len(files)} settled file(s) match, {len(waiting)} still being written",
        "detail": {
            "files": [
                {"name": f.path.name, "size": f.size, "date": f.day.isoformat()} for f in files
            ],
            "waiting": waiting,
        },
    }
