"""Which daemons run on this host: one file per daemon in `<data_dir>/daemon/`, named after it.

Every host of a campus shares the database, so the heartbeat table alone cannot say whether
*this* host's daemon is up: `--check` on a host whose daemon died used to answer "healthy"
because another host's worker beat. The data directory is this host's own, so a daemon writes
its instance name there at start and removes it at a clean exit; `--check` reads the names and
asks the database about exactly those. A file left by a killed daemon names a heartbeat that has
gone silent, which is the right answer ("unhealthy: ... last beat 80 s ago").
"""

from __future__ import annotations

import logging
from pathlib import Path

from batchops_core.infra.config import Settings

log = logging.getLogger(__name__)


def registry(settings: Settings) -> Path:
    return settings.data_path / "daemon"


def register(settings: Settings, name: str) -> Path | None:
    """Record this daemon; a data directory that cannot be written only costs `--check`."""
    path = registry(settings) / name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name + "\n", encoding="utf-8")
    except OSError as exc:
        log.warning("cannot record %s in %s (--check will not see it): %s", name, path, exc)
        return None
    return path


def unregister(settings: Settings, name: str) -> None:
    try:
        (registry(settings) / name).unlink(missing_ok=True)
    except OSError as exc:
        log.warning("cannot remove the instance file of %s: %s", name, exc)


def local_names(settings: Settings) -> list[str]:
    """The names of the daemons registered on this host (read from the files, sorted)."""
    folder = registry(settings)
    try:
        files = [p for p in folder.iterdir() if p.is_file()]
    except OSError:
        return []
    names = []
    for path in files:
        try:
            name = path.read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if name:
            names.append(name)
    return sorted(names)
