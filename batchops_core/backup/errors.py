"""Errors of backups and restores; each says what went wrong and what to do."""

from batchops_core.errors import BatchOpsError


class BackupError(BatchOpsError):
    """A backup cannot be written or read: an unreachable location, a damaged or foreign file."""


class RestoreRefused(BatchOpsError):
    """The target database holds data and `--force` was not given."""
