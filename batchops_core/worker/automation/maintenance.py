"""Maintenance automation tasks: the nightly backup and the retention purge.

Both are idempotent under at-least-once delivery: a backup writes into a temporary directory
renamed at the end; a purge moves files aside and deletes them only after the rows' transaction
committed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from batchops_core.enums import RunStatus
from batchops_core.infra.clock import utcnow
from batchops_core.worker.automation.frame import AutomationFailed, AutomationRun, Outcome
from batchops_core.worker.automation.registry import ArgSpec, automation

"""Uploads the purge may delete: nothing still queued or processing."""

# ------------------------------------------------------------------------------------ backup


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _manifest(storage: Path) -> list[dict[str, Any]]:
    if not storage.is_dir():
        return []
    files = []
    for path in sorted(p for p in storage.rglob("*") if p.is_file()):
        rel = path.relative_to(storage)
        if rel.parts and rel.parts[0] == ".trash":
            continue
        files.append({"path": str(rel), "size": path.stat().st_size, "sha256": _sha256_file(path)})
    return files


def _sqlite_backup(source: str, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _pg_dump(url: Any, target: Path) -> None:
    exe = shutil.which("pg_dump")
    if exe is None:
        raise AutomationFailed(
            "pg_dump is not installed: install the PostgreSQL client tools to back up PostgreSQL."
        )
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    cmd = [
        exe,
        "--format=custom",
        "--no-owner",
        f"--file={target}",
        f"--host={url.host or '127.0.0.1'}",
        f"--port={url.port or 5432}",
        f"--username={url.username or 'postgres'}",
        url.database or "postgres",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise AutomationFailed(f"pg_dump failed: {detail[-1] if detail else done.returncode}.")


@automation(
    "Consistent database copy plus a manifest of stored files.",
    ArgSpec("keep", int, False, "how many backups to keep", minimum=1),
)
async def run_daily_backup(run: AutomationRun, keep: int | None = None) -> Outcome:
    """A consistent database copy plus a manifest of stored files, rotated to `backup_keep`."""
    settings = run.ctx.settings
    db = run.ctx.db
    root = settings.data_path / "backups"
    name = f"backup-{utcnow():%Y%m%dT%H%M%S%fZ}"
    work = root / f".{name}.partial"
    work.mkdir(parents=True, exist_ok=False)
    try:
        if db.is_sqlite:
            dump = work / "batchops.db"
            await asyncio.to_thread(_sqlite_backup, str(db.url.database), dump)
        else:
            dump = work / "batchops.pgdump"
            await asyncio.to_thread(_pg_dump, db.url, dump)
        files = await asyncio.to_thread(_manifest, settings.storage_path)
        manifest = {
            "created_at": utcnow().isoformat(),
            "database": {
                "url": db.display_url,
                "file": dump.name,
                "size": dump.stat().st_size,
                "sha256": await asyncio.to_thread(_sha256_file, dump),
            },
            "storage_root": str(settings.storage_path),
            "files": files,
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        final = root / name
        os.replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    keep_n = max(1, keep if keep is not None else settings.retention.backup_keep)
    existing = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("backup-"))
    removed = [p.name for p in existing[:-keep_n]]
    for old in existing[:-keep_n]:
        shutil.rmtree(old, ignore_errors=True)
    run.info(
        f"backup {final.name}: database {manifest['database']['size']} bytes, "
        f"{len(files)} stored files; removed {len(removed)} old backup(s)"
    )
    return Outcome(
        RunStatus.SUCCEEDED,
        f"backup written to {final}",
        {"path": str(final), "files": len(files), "removed": removed},
    )
