"""Backups that restore: a consistent snapshot of the database and the stored objects it names.

One portable format instead of SQLite's online backup or `pg_dump`: every table is dumped in one
read transaction as gzip'd JSON lines (`rows.py`), so a backup of SQLite restores into
PostgreSQL and back, no PostgreSQL client tools (of a matching version) are needed on the
daemon's host, and the objects travel with it. A backup is the folder `backup-<UTC stamp>/` of
the backup location (`location.py`):

    tables/<table>.jsonl.gz     header line (columns, value kinds), then one JSON array a row
    objects/<storage key>       a copy of every object the rows name (`objects.py`)
    manifest.json               revision, row counts, sizes and sha256s; written last

`snapshot.write_backup` writes one (the nightly `run_daily_backup` task); `restore.restore_backup`
reads one back (`batchops restore`).
"""

from batchops_core.backup.errors import BackupError, RestoreRefused
from batchops_core.backup.location import list_backups, open_location
from batchops_core.backup.manifest import Manifest, MissingObject
from batchops_core.backup.restore import RestoreReport, restore_backup
from batchops_core.backup.snapshot import BackupResult, write_backup

__all__ = [
    "BackupError",
    "BackupResult",
    "Manifest",
    "MissingObject",
    "RestoreRefused",
    "RestoreReport",
    "list_backups",
    "open_location",
    "restore_backup",
    "write_backup",
]
