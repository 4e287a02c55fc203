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
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from batchops_core.enums import IncidentStatus, RunStatus, UploadStatus
from batchops_core.infra.clock import utcnow
from batchops_core.models import Incident, JobRun, Upload
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


# ------------------------------------------------------------------------------------ purge


def _upload_paths(storage: Path, upload: Upload) -> list[Path]:
    paths = [storage / "uploads" / str(upload.id)]
    for value in (upload.report_csv, upload.report_pdf, upload.fixlist_csv, upload.fixlist_xlsx):
        if value:
            path = Path(value)
            paths.append(path if path.is_absolute() else storage / path)
    return [p for p in paths if p.exists()]


@automation(
    "Delete rows and files older than the retention.",
    ArgSpec("days", int, False, "retention in days", minimum=1),
)
async def purge_old_records(run: AutomationRun, days: int | None = None) -> Outcome:
    """Delete finished uploads (and their files), runs and archived incidents past retention.

    Files are moved into `storage/.trash/<run>` first; the rows are deleted in one transaction;
    the trash is emptied only after the commit, and put back if the transaction fails.
    """
    settings = run.ctx.settings
    keep_days = days if days is not None else settings.retention.days
    cutoff = utcnow() - timedelta(days=keep_days)
    storage = settings.storage_path
    trash = storage / ".trash" / str(run.run_id)
    moved: list[tuple[Path, Path]] = []
    try:
        async with run.ctx.db.unit() as session:
            uploads = (
                await session.scalars(
                    select(Upload).where(
                        Upload.created_at < cutoff, Upload.status.in_(UploadStatus.finals())
                    )
                )
            ).all()
            for upload in uploads:
                for path in _upload_paths(storage, upload):
                    target = trash / f"{len(moved)}-{path.name}"
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(path, target)
                    moved.append((path, target))
            upload_ids = [u.id for u in uploads]
            if upload_ids:
                await session.execute(delete(Upload).where(Upload.id.in_(upload_ids)))
            runs = await session.execute(
                delete(JobRun).where(JobRun.created_at < cutoff, JobRun.status != RunStatus.RUNNING)
            )
            incidents = await session.execute(
                delete(Incident).where(
                    Incident.status == IncidentStatus.ARCHIVED,
                    Incident.archived_at.is_not(None),
                    Incident.archived_at < cutoff,
                )
            )
    except BaseException:
        for original, target in reversed(moved):
            original.parent.mkdir(parents=True, exist_ok=True)
            os.replace(target, original)
        raise
    shutil.rmtree(trash, ignore_errors=True)
    figures = {
        "uploads": len(upload_ids),
        "files": len(moved),
        "runs": int(runs.rowcount or 0),  # type: ignore[attr-defined]
        "incidents": int(incidents.rowcount or 0),  # type: ignore[attr-defined]
        "cutoff": cutoff.isoformat(),
    }
    if not any(figures[k] for k in ("uploads", "files", "runs", "incidents")):
        return Outcome(RunStatus.SKIPPED, f"nothing older than {keep_days} days", figures)
    run.info(
        f"purged {figures['uploads']} uploads ({figures['files']} files), {figures['runs']} runs, "
        f"{figures['incidents']} archived incidents older than {keep_days} days"
    )
    return Outcome(RunStatus.SUCCEEDED, f"purged records older than {keep_days} days", figures)
