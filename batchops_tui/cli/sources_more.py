"""`batchops missing` and `batchops records query`, and the dispatcher the sync commands share."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from batchops_core.infra.config import Settings
from batchops_core.infra.db import Database


@asynccontextmanager
async def dispatcher_for(db: Database, settings: Settings) -> AsyncIterator[Any]:
    """The worker dispatcher (arq with Redis, else in-process), closed after the command."""
    try:
        from batchops_core.worker.dispatcher import Dispatcher
    except ImportError:  # before the worker package landed
        from batchops_core.queue import Dispatcher  # type: ignore[no-redef]
    dispatcher = await Dispatcher.connect(db, settings)
    try:
        yield dispatcher
    finally:
        await dispatcher.close()


def register(
    sub: argparse._SubParsersAction, identity: argparse.ArgumentParser, source_commands: Any
) -> None:
    """Top-level `missing` and `records` groups (filled in with missing detection and records)."""
