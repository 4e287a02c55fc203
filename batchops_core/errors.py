"""Typed errors shared by every layer; each carries one sentence a person can act on."""


class BatchOpsError(Exception):
    """Base of every error BatchOps reports to a person instead of a traceback."""


class ConfigError(BatchOpsError):
    """The configuration file or environment holds a value BatchOps cannot use."""


class DatabaseUnavailable(BatchOpsError):
    """The configured database cannot be reached."""


class SchemaTooNew(BatchOpsError):
    """The database was migrated by a newer BatchOps than this one."""


class PermissionDenied(BatchOpsError):
    """The acting user's role does not allow the requested action."""


class NotFound(BatchOpsError):
    """The requested object does not exist."""


class ValidationFailed(BatchOpsError):
    """Input given by a person (a name, an email, a cron line, ...) is not acceptable."""


class AuthenticationFailed(BatchOpsError):
    """Sign-in refused: wrong credentials, unverified, disabled or locked account."""
