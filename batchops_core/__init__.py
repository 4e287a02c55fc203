"""BatchOps core: everything that is true without a screen or a worker."""

__version__ = "0.1.0"
