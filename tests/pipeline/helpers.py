"""Plain helpers shared by the pipeline tests (fixtures live in conftest.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from batchops_core.infra.config import PipelineSettings, Settings
from batchops_core.pipeline.stages import StageContext, StageOutcome

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
"""Copies of `shared/samples` (unchanged public files, see their README): a clean clone has them."""


@dataclasses.dataclass
class Ran:
    ctx: StageContext
    outcomes: list[StageOutcome]

    @property
    def publish(self) -> dict[str, Any]:
        return self.outcomes[-1].data

    def log(self, stage: str) -> list[str]:
        return next(o.log for o in self.outcomes if o.stage == stage)


def settings_with(base: Settings, **pipeline: Any) -> Settings:
    return dataclasses.replace(base, pipeline=dataclasses.replace(PipelineSettings(), **pipeline))
