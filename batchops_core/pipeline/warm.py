"""Importing this module imports every heavy module of the stages (the pool's preload)."""

from batchops_core.pipeline.stages import preload

preload()
