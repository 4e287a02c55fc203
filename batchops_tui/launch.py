"""Start the TUI: `batchops` without a subcommand lands here."""

from __future__ import annotations

from pathlib import Path

from batchops_core.infra.config import Settings


def _start_process_helpers() -> None:
    """Start multiprocessing's resource tracker while stderr is still the terminal.

    In embedded mode this process runs the pipeline, whose process pool starts the tracker on
    first use by passing `sys.stderr.fileno()` to the child. Under Textual, stderr is a capture
    object without a real descriptor, and the upload failed with "bad value(s) in fds_to_keep".
    The tracker is a tiny process; starting it here costs a few milliseconds.
    """
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()


def tui_log_path(settings: Settings) -> Path:
    return settings.data_path / "logs" / "tui.log"


def _log_to_file(settings: Settings) -> None:
    """Log lines go to `<data_dir>/logs/tui.log`: printed on the terminal they would tear the
    screen. A data directory that cannot be written to leaves logging off rather than failing."""
    import logging

    from batchops_core.infra.logs import log_to_file

    try:
        log_to_file(tui_log_path(settings), logging.INFO)
    except OSError:
        logging.getLogger().addHandler(logging.NullHandler())


def run_tui(settings: Settings) -> int:
    from batchops_tui.app import BatchOpsApp

    _log_to_file(settings)
    if not settings.uses_redis:
        _start_process_helpers()
    result = BatchOpsApp(settings).run()
    return result if isinstance(result, int) else 0
