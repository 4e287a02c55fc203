"""Start the TUI: `batchops` without a subcommand lands here."""

from __future__ import annotations

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


def run_tui(settings: Settings) -> int:
    from batchops_tui.app import BatchOpsApp

    if not settings.uses_redis:
        _start_process_helpers()
    result = BatchOpsApp(settings).run()
    return result if isinstance(result, int) else 0
