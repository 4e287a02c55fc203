"""Maintenance automation tasks: the nightly backup.

The work is `batchops_core.backup`'s; this body only runs it and reports. It is idempotent under
at-least-once delivery: every run writes a complete backup under its own stamp (the manifest
last), a run cut short leaves a folder without a manifest that nothing restores and retention
removes, and retention keeps the newest `keep`.
"""

from __future__ import annotations

from batchops_core.backup import BackupError, write_backup
from batchops_core.enums import RunStatus
from batchops_core.worker.automation.frame import AutomationFailed, AutomationRun, Outcome
from batchops_core.worker.automation.registry import ArgSpec, automation


@automation(
    "Consistent database snapshot plus the stored files it names, kept to backup_keep.",
    ArgSpec("keep", int, False, "how many backups to keep", minimum=1),
)
async def run_daily_backup(run: AutomationRun, keep: int | None = None) -> Outcome:
    """One backup to `retention.backup_url`, then the oldest beyond `keep` removed."""
    try:
        result = await write_backup(run.ctx.db, run.ctx.settings, keep=keep)
    except BackupError as exc:
        raise AutomationFailed(str(exc)) from None
    manifest = result.manifest
    run.info(
        f"backup {result.name}: {len(manifest.tables)} tables, {manifest.rows} rows, "
        f"{len(manifest.objects)} stored files ({manifest.object_bytes} bytes) to {result.where}"
    )
    for missing in manifest.missing:
        run.info(f"missing from storage: {missing.key} ({missing.table} #{missing.row_id})")
    if result.removed:
        run.info(f"removed {len(result.removed)} old backup(s): {', '.join(result.removed)}")
    gaps = f"; {len(manifest.missing)} stored files missing" if manifest.missing else ""
    return Outcome(
        RunStatus.SUCCEEDED,
        f"backup {result.name} written to {result.where}{gaps}",
        {
            "name": result.name,
            "where": result.where,
            "rows": manifest.rows,
            "files": len(manifest.objects),
            "missing": [m.key for m in manifest.missing],
            "removed": result.removed,
        },
        rows=manifest.rows,
    )
