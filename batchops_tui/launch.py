"""Start the TUI (placeholder until the TUI lands)."""

from batchops_core.config import Settings


def run_tui(settings: Settings) -> int:
    from batchops_tui.app import BatchOpsApp

    BatchOpsApp(settings).run()
    return 0
