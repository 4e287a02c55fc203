"""The context every task body receives: database, settings, this worker's name, where follow-up
work goes, and which try of the job this is."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database
from batchops_core.pipeline.pool import configure_pool
from batchops_core.worker.heartbeat import WorkTracker

if TYPE_CHECKING:
    from batchops_core.worker.automation.frame import RunBook
    from batchops_core.worker.dispatcher import Dispatcher


@dataclass
class TaskContext:
    """What every task body needs; arq's `ctx` dict carries one under the key `"batchops"`."""

    db: Database
    settings: Settings
    worker: str
    dispatcher: Dispatcher | None = None
    """Where follow-up work goes (an ingest enqueues its upload); None runs it inline."""
    tracker: WorkTracker = field(default_factory=WorkTracker)
    runbook: RunBook | None = None
    """Batches run rows of concurrent automation tasks; None writes each run on its own."""
    job_try: int = 1
    arq_job_id: str | None = None

    def __post_init__(self) -> None:
        # Every worker (daemon, --once, the TUI's embedded one) builds its context from its
        # settings before running a stage: the one place `stage_processes` can take effect.
        configure_pool(self.settings.pipeline.stage_processes)

    @property
    def final_try(self) -> bool:
        return self.job_try >= self.settings.worker.max_tries

    def for_job(self, *, job_try: int, arq_job_id: str | None) -> TaskContext:
        """A per-job copy sharing the database, dispatcher and tracker."""
        return dataclasses.replace(self, job_try=job_try, arq_job_id=arq_job_id)
